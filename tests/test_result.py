"""The Python result: LossResult.input is a typed InputInfo whose JSON is the documented ``input`` object."""

import math

import cecli
from cecli.result import InputInfo


def test_input_is_typed_and_its_json_keeps_the_documented_keys(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,y_true,y_pred\na,1,0.9\nb,0,0.2\n", encoding="utf-8")
    result = cecli.compute("bce", str(path), keep="id")
    assert isinstance(result.input, InputInfo)
    assert result.input == InputInfo(
        path=str(path),
        paths=[str(path)],
        format="csv",
        labels_path=None,
        label_columns=["y_true"],
        prediction_columns=["y_pred"],
        weight_column=None,
        keep_columns=["id"],
        by_columns=[],
        classes=1,
    )
    assert list(result.to_dict()["input"]) == [
        "path",
        "paths",
        "format",
        "labels_path",
        "label_columns",
        "prediction_columns",
        "weight_column",
        "keep_columns",
        "by_columns",
        "classes",
    ]
    assert math.isclose(result.value, (-math.log(0.9) - math.log(0.8)) / 2, rel_tol=1e-15)
