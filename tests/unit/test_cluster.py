"""Clusters: parsing specs, relative speeds, signatures, link rules and value semantics."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgeenergy.cluster import DEFAULT_DEVICE, MAX_DEVICES, Cluster, as_cluster
from pytest_edgeenergy.errors import PartitionError, ProfileError
from pytest_edgeenergy.profiles import list_devices, load_device

RPI4 = load_device("rpi4")
NANO = load_device("jetson-nano-10w")
ESP = load_device("esp32-s3")


def test_a_comma_separated_spec_lists_the_devices_in_order() -> None:
    cluster = Cluster.parse("rpi4,rpi4,jetson-nano-10w")
    assert [d.name for d in cluster] == ["rpi4", "rpi4", "jetson-nano-10w"]
    assert len(cluster) == 3
    assert cluster[2] == NANO and cluster[-1] == NANO


def test_a_count_and_a_name_repeat_the_device() -> None:
    cluster = Cluster.parse("4xrpi4")
    assert len(cluster) == 4 and all(device == RPI4 for device in cluster)
    assert cluster == Cluster.homogeneous("rpi4", 4) == as_cluster(4)


def test_counted_and_plain_items_mix_and_spaces_are_ignored() -> None:
    cluster = Cluster.parse(" 2 x rpi4 , jetson-nano-10w,1Xesp32-s3 ")
    assert [d.name for d in cluster] == ["rpi4", "rpi4", "jetson-nano-10w", "esp32-s3"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("0xrpi4", "device count in item 1 of cluster spec '0xrpi4' must be at least 1, got 0"),
        ("rpi4,-2xrpi4", "must be at least 1, got -2"),
        (f"{MAX_DEVICES + 1}xrpi4", f"must be at most {MAX_DEVICES}, got {MAX_DEVICES + 1}"),
        ("40xrpi4,40xrpi4", f"names more than {MAX_DEVICES} devices"),
    ],
)
def test_a_bad_count_in_a_spec_is_named(spec: str, message: str) -> None:
    with pytest.raises(PartitionError, match=re.escape(message)):
        Cluster.parse(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty cluster spec ''"),
        ("  ", "empty cluster spec"),
        ("rpi4,,rpi4", "empty device name at item 2 of cluster spec 'rpi4,,rpi4'"),
        ("rpi4,", "empty device name at item 2"),
        ("3x", "empty device name after the count at item 1"),
    ],
)
def test_an_empty_name_in_a_spec_is_named(spec: str, message: str) -> None:
    with pytest.raises(PartitionError, match=message):
        Cluster.parse(spec)


def test_an_unknown_device_in_a_spec_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown device 'rpi5'.*Known devices: esp32-s3"):
        Cluster.parse("rpi4,rpi5")


def test_a_cluster_needs_at_least_one_device() -> None:
    with pytest.raises(PartitionError, match=r"^a cluster needs at least 1 device, got 0$"):
        Cluster(())


def test_a_cluster_holds_only_profiles() -> None:
    with pytest.raises(PartitionError, match="cluster device 1 must be a DeviceProfile"):
        Cluster((RPI4, "rpi4"))  # type: ignore[arg-type]


def test_speeds_are_relative_to_the_fastest_device() -> None:
    cluster = Cluster((RPI4, NANO, ESP))
    assert cluster.speeds == (
        RPI4.macs_per_s / NANO.macs_per_s,
        1.0,
        ESP.macs_per_s / NANO.macs_per_s,
    )
    assert Cluster.homogeneous(RPI4, 3).speeds == (1.0, 1.0, 1.0)


def test_the_signature_counts_alike_devices_and_joins_mixed_ones() -> None:
    assert Cluster.parse("4xrpi4").signature == "4xrpi4"
    assert repr(Cluster.parse("4xrpi4")) == "Cluster('4xrpi4')"
    assert Cluster.parse("rpi4").signature == "1xrpi4"
    assert Cluster.parse("rpi4,rpi4,jetson-nano-10w").signature == "rpi4+rpi4+jetson-nano-10w"


def test_a_transfer_uses_the_slower_link_and_the_larger_latency() -> None:
    cluster = Cluster((RPI4, ESP, NANO))
    assert cluster.link_bytes_per_s(0, 1) == cluster.link_bytes_per_s(1, 0) == ESP.net_bytes_per_s
    assert cluster.link_latency_s(0, 1) == cluster.link_latency_s(1, 0) == ESP.net_latency_s
    assert cluster.link_bytes_per_s(0, 2) == min(RPI4.net_bytes_per_s, NANO.net_bytes_per_s)
    assert cluster.link_latency_s(2, 0) == max(RPI4.net_latency_s, NANO.net_latency_s)


def test_a_link_needs_two_different_devices_of_the_cluster() -> None:
    cluster = Cluster.parse("2xrpi4")
    with pytest.raises(PartitionError, match="two different devices, got device 1 to itself"):
        cluster.link_bytes_per_s(1, 1)
    with pytest.raises(IndexError, match="device 2 is not in this 2-device cluster 2xrpi4"):
        cluster.link_latency_s(0, 2)
    with pytest.raises(IndexError):
        cluster.link_bytes_per_s(-1, 0)


def test_clusters_are_equal_and_hash_alike_by_value() -> None:
    assert Cluster.parse("2xrpi4") == Cluster.parse("rpi4, rpi4")
    assert len({Cluster.parse("2xrpi4"), Cluster.homogeneous("rpi4", 2)}) == 1
    assert Cluster.parse("rpi4,esp32-s3") != Cluster.parse("esp32-s3,rpi4")
    assert Cluster.parse("rpi4,esp32-s3") != Cluster.parse("rpi4")


def test_a_cluster_is_reported_as_json() -> None:
    report = json.loads(json.dumps(Cluster.parse("rpi4,esp32-s3").to_dict()))
    assert report["signature"] == "rpi4+esp32-s3"
    assert [d["name"] for d in report["devices"]] == ["rpi4", "esp32-s3"]
    assert report["devices"][0]["idle_w"] == RPI4.idle_w


def test_a_bare_count_means_that_many_default_devices() -> None:
    assert DEFAULT_DEVICE == "rpi4"
    assert as_cluster(3).signature == "3xrpi4"
    assert as_cluster("3") == as_cluster(3)
    assert as_cluster("rpi4,esp32-s3").signature == "rpi4+esp32-s3"
    cluster = Cluster.parse("esp32-s3")
    assert as_cluster(cluster) is cluster


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "device count must be at least 1, got 0"),
        (-3, "device count must be at least 1, got -3"),
        ("0", "device count must be at least 1, got 0"),
        (MAX_DEVICES + 1, f"device count must be at most {MAX_DEVICES}, got {MAX_DEVICES + 1}"),
        (True, r"device count must be an integer, got True \(bool\)"),
        (2.0, r"device count must be an integer, got 2.0 \(float\)"),
    ],
)
def test_a_bad_device_count_is_named(value: object, message: str) -> None:
    with pytest.raises(PartitionError, match=message):
        as_cluster(value)  # type: ignore[arg-type]


def test_a_homogeneous_cluster_checks_its_count() -> None:
    with pytest.raises(PartitionError, match="device count must be at least 1, got 0"):
        Cluster.homogeneous("rpi4", 0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(list_devices()), min_size=1, max_size=8))
def test_a_signature_parses_back_to_the_same_cluster(names: list[str]) -> None:
    cluster = Cluster(tuple(load_device(name) for name in names))
    spec = (
        cluster.signature if "+" not in cluster.signature else cluster.signature.replace("+", ",")
    )
    assert Cluster.parse(spec) == cluster
    assert max(cluster.speeds) == 1.0
    assert all(0.0 < speed <= 1.0 for speed in cluster.speeds)
