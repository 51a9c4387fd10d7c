"""``calibrate --meter NAME --net-rendezvous ADDR:PORT --net-rank R``: two hosts (here two
processes on 127.0.0.1) exchange messages while each measures its own (fake) meter, and each
writes tx_j_per_byte and rx_j_per_byte with the lines saying how; bad input is one message."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

from pytest_edgeenergy.__main__ import main
from pytest_edgeenergy.errors import ProfileError
from pytest_edgeenergy.meters.network import (
    NetPeer,
    PeerError,
    measure_network_energy,
    parse_rendezvous,
)
from pytest_edgeenergy.meters.registry import METER_MODULES_ENV
from pytest_edgeenergy.profiles import load_device

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


@pytest.fixture
def fake_meters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv(METER_MODULES_ENV, "fake_share_meter")


def calibrate_fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_rendezvous_is_an_address_and_a_port() -> None:
    assert parse_rendezvous("10.0.0.2:29600") == ("10.0.0.2", 29600)
    assert parse_rendezvous("[fe80::1]:29600") == ("fe80::1", 29600)
    for bad in ("10.0.0.2", ":29600", "host:0", "host:http", "host:70000"):
        with pytest.raises(ValueError, match=r"expected ADDR:PORT"):
            parse_rendezvous(bad)
    with pytest.raises(PeerError, match=r"--net-rank 2: the rank is 0"):
        NetPeer("127.0.0.1", 29600, 2)


def test_bad_network_options_are_one_message_each(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "host.toml")
    err = calibrate_fails(capsys, "--out", out, "--net-rendezvous", "127.0.0.1:29600",
                          "--net-rank", "0")
    assert ("error: calibrate: --net-rendezvous measures the per-byte network energies with a "
            "power meter: give --meter NAME too") in err
    err = calibrate_fails(capsys, "--out", out, "--meter", "rapl", "--net-rendezvous",
                          "127.0.0.1:29600")
    assert "--net-rendezvous needs --net-rank 0 (the host that listens there) or 1" in err
    err = calibrate_fails(capsys, "--out", out, "--meter", "rapl", "--net-rendezvous", "pi-a",
                          "--net-rank", "1")
    assert "argument --net-rendezvous: expected ADDR:PORT" in err and "'pi-a'" in err
    assert not (tmp_path / "host.toml").exists()


def test_a_meter_unavailable_here_stops_before_connecting_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = f"rapl:root={tmp_path / 'none'}"
    started = time.monotonic()
    err = calibrate_fails(capsys, "--out", str(tmp_path / "host.toml"), "--meter", spec,
                          "--net-rendezvous", f"127.0.0.1:{free_port()}", "--net-rank", "1")
    assert time.monotonic() - started < 5  # no wait for a peer
    assert (f"error: --meter {spec!r} is unavailable here: RAPL: no {tmp_path / 'none'} (the "
            "kernel has no powercap RAPL driver") in err
    assert "nothing was measured or written" in err
    assert not (tmp_path / "host.toml").exists()


def test_an_unreachable_peer_is_named_with_its_address_and_the_timeout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_meters: None) -> None:
    port = free_port()  # closed again: nobody listens there
    err = calibrate_fails(capsys, "--out", str(tmp_path / "host.toml"), "--meter", "share-fake",
                          "--net-rendezvous", f"127.0.0.1:{port}", "--net-rank", "1",
                          "--net-join-timeout", "1")
    assert (f"error: the peer at --net-rendezvous 127.0.0.1:{port} (rank 0) could not be "
            "reached within 1 s (--net-join-timeout): ") in err
    assert "start the same command there with --net-rank 0 first" in err
    assert err.count("\n") == 1  # one line: nothing of torch's connection log
    assert not (tmp_path / "host.toml").exists()


def test_a_peer_that_never_joins_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_meters: None) -> None:
    port = free_port()
    err = calibrate_fails(capsys, "--out", str(tmp_path / "host.toml"), "--meter", "share-fake",
                          "--net-rendezvous", f"127.0.0.1:{port}", "--net-rank", "0",
                          "--net-join-timeout", "1")
    assert (f"error: the peer (rank 1) did not join --net-rendezvous 127.0.0.1:{port} within "
            "1 s (--net-join-timeout); start the same command on the other host with "
            "--net-rank 1") in err
    with socket.create_server(("127.0.0.1", 0)) as busy:
        taken = int(busy.getsockname()[1])
        err = calibrate_fails(capsys, "--out", str(tmp_path / "host.toml"), "--meter",
                              "share-fake", "--net-rendezvous", f"127.0.0.1:{taken}",
                              "--net-rank", "0", "--net-join-timeout", "1")
    assert f"error: --net-rank 0 cannot listen at --net-rendezvous 127.0.0.1:{taken}: " in err
    assert not (tmp_path / "host.toml").exists()


@pytest.mark.heavy  # two calibrate processes, each importing torch and timing convolutions
def test_two_hosts_measure_their_per_byte_network_energies_into_their_profiles(
        tmp_path: Path) -> None:
    import fake_share_meter as fake

    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", **{METER_MODULES_ENV: "fake_share_meter"},
               PYTHONPATH=os.pathsep.join([str(HERE), *filter(None, [os.environ.get(
                   "PYTHONPATH")])]))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "pytest_edgeenergy", "calibrate", "--out",
         str(tmp_path / f"host{rank}.toml"), "--meter", "net-fake", "--seconds", "0.5",
         "--net-rendezvous", f"127.0.0.1:{port}", "--net-rank", str(rank),
         "--net-join-timeout", "60"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for rank in (0, 1)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert "measured: tx_j_per_byte = 2e-09 J/B: Measured with meter 'net-fake'" in out
    for rank in (0, 1):
        path = tmp_path / f"host{rank}.toml"
        text = path.read_text()
        flat = " ".join(line.lstrip("# ") for line in text.splitlines())
        assert ("energy above idle while sending 4194304 B messages over gloo to host "
                f"{socket.gethostname()}, back to back") in flat
        assert "energy above idle while receiving 4194304 B messages over gloo from host" in flat
        assert "divided by the payload bytes" in flat
        values = tomllib.loads(text)
        assert values["tx_j_per_byte"] == pytest.approx(fake.TX_J_PER_BYTE, rel=1e-3)
        assert values["rx_j_per_byte"] == pytest.approx(fake.RX_J_PER_BYTE, rel=1e-3)
        assert values["idle_w"] == pytest.approx(fake.NET_IDLE_W, rel=1e-3)
        assert "FILL IN" in text and "# tx_j_per_byte =" not in text
        with pytest.raises(ProfileError, match=r"network"):
            load_device(path)  # network, net_bytes_per_s, net_latency_s: still by hand


def test_rank_0_stops_at_once_with_the_reason_when_rank_1_cannot_measure(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_meters: None) -> None:
    port = free_port()
    rank0 = NetPeer("127.0.0.1", port, 0, None, 60.0)
    failed: list[BaseException] = []

    def run_rank0() -> None:
        try:
            measure_network_energy("share-fake", rank0, seconds=0.5)
        except BaseException as exc:  # the test looks at it below
            failed.append(exc)

    thread = threading.Thread(target=run_rank0)
    started = time.monotonic()
    thread.start()
    while True:  # rank 0 listens
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    spec = f"rapl:root={tmp_path / 'none'}"
    err = calibrate_fails(capsys, "--out", str(tmp_path / "host.toml"), "--meter", spec,
                          "--net-rendezvous", f"127.0.0.1:{port}", "--net-rank", "1")
    assert f"error: --meter {spec!r} is unavailable here: RAPL: no" in err
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - started < 30  # not its 60 s timeout
    assert len(failed) == 1 and isinstance(failed[0], PeerError)
    assert str(failed[0]).startswith(
        f"the peer (rank 1) cannot measure: its --meter is unavailable on host "
        f"{socket.gethostname()}: RAPL: no {tmp_path / 'none'}")
    assert not (tmp_path / "host.toml").exists()
