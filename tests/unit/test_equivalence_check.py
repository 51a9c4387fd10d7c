"""The equivalence check compares non-finite values as such and refuses bad tolerances; the
reference cache keys by model object and weights (issue 9, items 2 and 3)."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

from pytest_edgeenergy import PartitionError, build_model
from pytest_edgeenergy.equivalence import ReferenceCache, check_equivalence

INF, NAN = float("inf"), float("nan")


def _ref() -> torch.Tensor:
    return torch.tensor([[1.0, INF, NAN, -2.0, -INF]])


def test_an_infinite_reference_does_not_make_the_tolerance_infinite() -> None:
    ref = _ref()
    out = ref.clone()
    out[0, 0] = 1000.0
    result = check_equivalence(out, ref)
    assert not result.equivalent
    assert result.atol == pytest.approx(2e-5)
    assert result.problem is not None and "beyond 1e-05 x max|reference| = 2e-05" in result.problem
    assert "at (0, 0): output 1000, reference 1" in result.problem


@pytest.mark.parametrize(("position", "value"), [
    (1, 5.0), (1, -INF), (1, NAN), (2, 0.0), (2, INF), (4, INF), (0, NAN), (3, INF)])
def test_non_finite_values_must_match_in_position_and_value(position: int,
                                                            value: float) -> None:
    ref = _ref()
    out = ref.clone()
    out[0, position] = value
    result = check_equivalence(out, ref)
    assert not result.equivalent
    assert result.problem is not None and "non-finite values" in result.problem
    assert f"at (0, {position})" in result.problem


def test_equal_outputs_with_nan_and_inf_in_the_same_places_are_equivalent() -> None:
    ref = _ref()
    result = check_equivalence(ref.clone(), ref)
    assert result.equivalent
    assert result.max_abs_error == 0.0


def test_a_reference_of_only_nans_is_compared_without_crashing() -> None:
    ref = torch.full((1, 4), NAN)
    assert check_equivalence(ref.clone(), ref).equivalent
    assert not check_equivalence(torch.zeros(1, 4), ref).equivalent


@pytest.mark.parametrize("tolerance", [-1e-5, NAN, INF, "1e-5", True, None])
def test_a_bad_tolerance_is_refused_by_name_with_its_value(tolerance: object) -> None:
    with pytest.raises(PartitionError, match=r"tolerance must be a finite number of 0 or more, "
                                             r"got " + repr(tolerance).replace("(", r"\(")):
        check_equivalence(torch.ones(2), torch.ones(2), tolerance)


def test_outputs_of_different_shapes_are_not_equivalent() -> None:
    result = check_equivalence(torch.ones(1, 10), torch.ones(1, 5))
    assert result.problem == "the partitioned output has shape (1, 10), the reference (1, 5)"


def test_two_models_with_one_name_get_their_own_reference() -> None:
    cache = ReferenceCache()
    x = torch.randn(1, 3, 32, 32)
    first, second = build_model("tinycnn", seed=0), build_model("tinycnn", seed=1)
    a = cache.output(first, x, "tinycnn")
    b = cache.output(second, x, "tinycnn")
    with torch.no_grad():
        assert torch.equal(b, second(x))
        assert not torch.equal(a, b)
    assert cache.output(first, x, "tinycnn") is a
    assert cache.runs == 2


def test_a_reference_follows_the_models_weights() -> None:
    cache = ReferenceCache()
    x = torch.randn(1, 3, 32, 32)
    model = build_model("tinycnn")
    before = cache.output(model, x, "tinycnn")
    model.load_state_dict(build_model("tinycnn", seed=4).state_dict())
    after = cache.output(model, x, "tinycnn")
    with torch.no_grad():
        assert torch.equal(after, model(x))
    assert not torch.equal(before, after)


def test_a_model_built_where_a_freed_one_was_never_gets_its_reference() -> None:
    """Ids and addresses of freed models are reused: the cache must not key by them alone."""
    cache = ReferenceCache()
    x = torch.randn(1, 4)
    seen: set[int] = set()
    reused = made = 0
    while made < 20 or (reused < 3 and made < 500):  # until ids were reused a few times
        torch.manual_seed(made)
        model = nn.Linear(4, 2)
        reused += id(model) in seen
        seen.add(id(model))
        made += 1
        with torch.no_grad():
            assert torch.equal(cache.output(model, x, "linear"), model(x))
        freed = weakref.ref(model)
        del model
        if freed() is not None:  # a full collection only when freeing needs one (slow here)
            gc.collect()
        assert freed() is None
    assert reused >= 3  # the case this test is about did happen
    assert cache.runs == made


def test_complex_outputs_are_compared_in_both_parts() -> None:
    ref = torch.tensor([1 + 1j, 2 + 0j])
    assert check_equivalence(ref.clone(), ref).equivalent
    result = check_equivalence(torch.tensor([1 + 2j, 2 + 0j]), ref)
    assert result.problem is not None and "at (0, 1): output 2, reference 1" in result.problem
