import pytest

from training.core.overrides import OVERRIDES, override_errors


def test_valid_overrides_have_no_errors():
    assert override_errors({"lr": 1e-4, "warmup_epochs": 0.5, "augment": False, "init_checkpoints": "a.pt"}) == {}


def test_each_problem_is_named_by_key():
    errors = override_errors(
        {"lr": 0, "batch_size": 2.5, "augment": 1, "optimizer": "lbfgs", "weight_decay": -1, "momentum": 0.9}
    )
    assert errors == {
        "lr": "must be > 0",
        "batch_size": "must be a int",
        "augment": "must be a bool",
        "optimizer": "must be one of adam, adamw, sgd",
        "weight_decay": "must be >= 0",
        "momentum": f"unknown; valid: {', '.join(OVERRIDES)}",
    }


def test_booleans_are_not_numbers():
    assert override_errors({"batch_size": True}) == {"batch_size": "must be a int"}


@pytest.mark.parametrize(
    ("key", "raw", "read"),
    [("lr", "1e-4", 1e-4), ("batch_size", "8", 8), ("augment", "false", False), ("members", [0, 1], [0, 1])],
)
def test_the_runner_reads_command_line_strings(key, raw, read):
    assert OVERRIDES[key].read(key, raw) == read


def test_the_runner_refuses_what_the_service_refuses():
    with pytest.raises(ValueError, match="override lr: must be > 0"):
        OVERRIDES["lr"].read("lr", 0)
    with pytest.raises(ValueError, match="not one of adam, adamw, sgd"):
        OVERRIDES["optimizer"].read("optimizer", "lbfgs")
