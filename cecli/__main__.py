"""``python -m cecli``."""

if __name__ == "__main__":
    from cecli.cli import main

    main()
