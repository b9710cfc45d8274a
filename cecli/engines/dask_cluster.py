"""Reaching a Dask cluster: the scheduler address (``--scheduler``, ``--scheduler-file``, the
environment), checked before connecting, TLS settings, a private local cluster, and the CPUs a
worker may use (cgroup quotas).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import time

from cecli.errors import InputError, OptionError, printable

CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler and hear it answer


DEFAULT_PORT = 8786  # Dask's scheduler port, when an address has none


CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"  # cgroup v2: "QUOTA PERIOD" or "max PERIOD"


CGROUP_V1_QUOTA = ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")


_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")


def _check_client(client, client_class) -> None:
    """A ``distributed.Client`` passed in must be one, and connected (else a usage error)."""
    if not isinstance(client, client_class):
        raise OptionError(f"client must be a distributed.Client; received {type(client).__name__}")
    if client.status != "running":
        raise OptionError(
            f"the Dask client passed in is not connected (status {client.status!r})",
            hint="pass a client of a running cluster, e.g. cluster.get_client()",
        )


def _address(scheduler: str | None, scheduler_file: str | None = None) -> tuple[str | None, str]:
    """The scheduler address to use and where it came from, checked for form (exit 2 when malformed)."""
    if scheduler is not None:
        return _checked_address(scheduler, "--scheduler"), "--scheduler"
    if scheduler_file is not None:
        option = f"the address in --scheduler-file {printable(scheduler_file)}"
        return _checked_address(_scheduler_file_address(scheduler_file), option), option
    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        return _checked_address(address, "DASK_SCHEDULER_ADDRESS"), "DASK_SCHEDULER_ADDRESS"
    return None, ""


def _scheduler_file_address(path: str) -> str:
    """The ``address`` in a Dask scheduler file (as ``dask scheduler --scheduler-file PATH`` writes it)."""
    import json

    try:
        with open(path, encoding="utf-8") as file:
            info = json.load(file)
    except OSError as error:
        raise InputError(
            f"cannot read the Dask scheduler file: {error.strerror or error}",
            file=path,
            hint="start the scheduler with dask scheduler --scheduler-file PATH, or check the path",
        ) from None
    except ValueError:  # not JSON, or not UTF-8
        info = None
    address = info.get("address") if isinstance(info, dict) else None
    if not isinstance(address, str):
        raise InputError(
            'is not a Dask scheduler file: it has no "address"',
            file=path,
            hint="give the file that dask scheduler --scheduler-file PATH writes",
        )
    return address


def _checked_address(address: str, option: str) -> str:
    """`address` if it is a Dask address (``tcp://HOST:PORT``, ``tls://``, ``HOST:PORT``, ...); else OptionError."""
    import ipaddress

    from distributed.comm import registry
    from distributed.comm.addressing import parse_address, parse_host_port

    def malformed(why: str) -> OptionError:
        return OptionError(
            f"{option} {printable(address)!r} is not a Dask scheduler address: {why}",
            hint="use tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786, or tls://HOST:PORT",
        )

    scheme, location = parse_address(address.strip(), strict=False)
    if scheme not in registry.backends:
        raise malformed(f"{scheme}:// is not a Dask protocol")
    if scheme == "inproc":
        return address.strip()
    try:
        host, port = parse_host_port(location, DEFAULT_PORT)
    except ValueError:
        raise malformed("the port is not a number") from None
    if not host:
        raise malformed("no host")
    if not _HOST.fullmatch(host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise malformed(f"{printable(host)!r} is not a host name") from None
    if not 0 < int(port) < 65536:
        raise malformed(f"port {port} is outside 1-65535")
    return address.strip()


def _probe(address: str, option: str, timeout: float) -> None:
    """Check, within about `timeout` s, that a Dask scheduler answers at `address`.

    Dask's own client may wait far longer (an endpoint that accepts a connection and never
    answers, an HTTP server), or misread another protocol's bytes as a frame length. This
    asks the endpoint who it is, in a thread of its own (the caller may run an event loop).
    """
    import asyncio
    import concurrent.futures

    from distributed.comm import CommClosedError, connect
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import get_backend

    scheme = parse_address(address, strict=False)[0]
    get_backend(scheme)  # imported before the clock starts
    connection_args = _security(address).get_connection_args("client")
    if scheme in ("tls", "wss") and connection_args.get("ssl_context") is None:
        raise OptionError(
            f"{option} {address} needs Dask's TLS settings, and none are configured",
            hint="set distributed.comm.tls.ca-file, .client.cert and .client.key in Dask's configuration, "
            "e.g. DASK_DISTRIBUTED__COMM__TLS__CA_FILE",
        )

    async def identity():
        deadline = time.monotonic() + timeout
        # Dask's connect retries until `timeout`, but then waits for the handshake without limit.
        comm = await asyncio.wait_for(connect(address, timeout=timeout, **connection_args), timeout + 1)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await asyncio.wait_for(comm.read(), max(deadline - time.monotonic(), 0.1))
        finally:
            comm.abort()

    def unreachable(why: str) -> InputError:
        return InputError(f"cannot reach the Dask scheduler at {address}: {why}", hint=f"check {option}")

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cecli-probe") as pool:
        try:
            answer = pool.submit(asyncio.run, identity()).result()
        except CommClosedError:
            raise unreachable("it closed the connection instead of answering as a Dask scheduler") from None
        except (TimeoutError, OSError) as error:  # refused, no route, unknown name, or a connection left unanswered
            refused = _os_reason(error) or _tcp_error(address)
            if refused:
                raise unreachable(f"{refused} for {timeout:g} s") from None
            raise unreachable(f"it accepted the connection but did not answer within {timeout:g} s") from None
        except Exception:  # another protocol's bytes misread as Dask frames (e.g. a huge frame length)
            raise unreachable("what answers there does not speak Dask's protocol") from None
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind != "Scheduler":
        what = f"a Dask {kind}" if isinstance(kind, str) else "not a Dask scheduler"
        raise unreachable(f"{printable(what)} answers there, not a scheduler")


def _os_reason(error: BaseException) -> str | None:
    """Why a connection failed, as the operating system says it ("Connection refused"), if it did.

    Dask wraps the system's error in its own ("Timed out trying to connect to ADDRESS after
    10 s"), which repeats the address and hides the cause.
    """
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        found = re.search(r"\[Errno -?\d+\] ([^\n]+)", str(cause))
        if found:
            return found.group(1)
        cause = cause.__cause__ or cause.__context__
    return None


def _tcp_error(address: str) -> str | None:
    """The system's error for a plain TCP connection to `address` (tcp:// and tls://), or None if one opens.

    Tells "nothing listens there" from "something listens and does not answer" when Dask's
    attempts ran out of time without saying which.
    """
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, location = parse_address(address, strict=False)
    if scheme not in ("tcp", "tls"):
        return None
    try:
        with socket.create_connection(parse_host_port(location, DEFAULT_PORT), timeout=1.0):
            return None
    except OSError as error:
        return error.strerror or str(error) or type(error).__name__


def _security(address: str):
    """Dask's security settings for `address`, as ``distributed.Client`` finds them itself.

    The function named by ``distributed.client.security-loader``, if one is configured (how
    dask-gateway-like deployments hand out credentials); else ``Security()``, which reads
    ``distributed.comm.tls.*`` (``ca-file``, ``client.cert``, ``client.key``, ...) from Dask's
    configuration: its YAML files or ``DASK_DISTRIBUTED__COMM__TLS__*`` environment variables.
    The probe and the client use the same settings.
    """
    import dask.config
    from distributed.security import Security
    from distributed.utils import import_term

    loader = dask.config.get("distributed.client.security-loader", None)
    if loader:
        try:
            found = import_term(loader)({"address": address})
        except Exception as error:
            raise OptionError(
                f"Dask's distributed.client.security-loader {printable(str(loader))!r} failed: "
                f"{type(error).__name__}: {printable(str(error))}"
            ) from None
        if found is not None:
            return found
    return Security()


@contextlib.contextmanager
def _connected(client_class, address: str, option: str):
    """A client of `address`; an unreachable scheduler is one line (exit 3)."""
    try:
        client = client_class(address, timeout=f"{CONNECT_TIMEOUT}s", security=_security(address))
    except (OSError, TimeoutError) as error:
        raise InputError(
            f"cannot reach the Dask scheduler at {address}: {_os_reason(error) or error}",
            hint=f"check {option or 'the cluster'}",
        ) from None
    with client:
        yield client


@contextlib.contextmanager
def _cluster(address: str | None, option: str = ""):
    """Yield a scheduler address: the given one (checked to answer as a scheduler) or a private local cluster."""
    if address:
        _probe(address, option, CONNECT_TIMEOUT)
        yield address
        return
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=min(usable_cpus(), 4),
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.CRITICAL,  # a failed task is cecli's one error line, not the workers' log
    ) as cluster:
        yield cluster.scheduler_address


def usable_cpus() -> int:
    """CPUs this process may use: its CPU set (``sched_getaffinity``), capped by a cgroup CPU quota.

    ``os.cpu_count()`` counts the machine's CPUs, also in a container limited to fewer. The quota
    is ``ceil(quota / period)`` from cgroup v2 ``cpu.max`` (or v1 ``cpu.cfs_quota_us``); none is
    ``max`` (v1: ``-1``). At least 1.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cpus, quota) if quota else cpus)


def _cgroup_quota() -> int | None:
    try:
        with open(CGROUP_CPU_MAX) as file:
            quota, period = (file.read().split() + ["100000"])[:2]
    except OSError:
        try:
            quota, period = (_read(name) for name in CGROUP_V1_QUOTA)
        except OSError:
            return None
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:  # "max": no quota
        return None
    return math.ceil(quota_us / period_us) if quota_us > 0 and period_us > 0 else None


def _read(path: str) -> str:
    with open(path) as file:
        return file.read().strip()
