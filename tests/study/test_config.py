"""Paths, profiles, parameter validation, seeding and device choice."""
import dataclasses

import pytest
import torch

from sentiment_lib import config
from sentiment_lib.profiles import PROFILES, resolve as resolve_params


def test_paths_follow_the_environment_overrides(isolated_dirs):
    assert config.data_dir() == isolated_dirs["data"].resolve()
    assert config.run_dir("smoke") == isolated_dirs["artifacts"].resolve() / "smoke"
    assert config.report_dir("full") == isolated_dirs["reports"].resolve() / "full"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_validates(profile):
    params = resolve_params(profile)
    assert params.profile == profile
    assert params.as_dict() == {"profile": profile, **PROFILES[profile]}


def test_profiles_share_one_set_of_parameters_and_grow():
    assert {frozenset(p) for p in PROFILES.values()} == {frozenset(PROFILES["smoke"])}
    def review_passes(p):  # training reviews seen: full trains fewer epochs over more than twice the reviews
        return p["epochs"] * (p["train_size"] or round(25000 * (1 - p["val_fraction"])))

    assert review_passes(PROFILES["smoke"]) <= review_passes(PROFILES["quick"]) <= review_passes(PROFILES["full"])
    assert PROFILES["smoke"]["max_len"] <= PROFILES["quick"]["max_len"] <= PROFILES["full"]["max_len"]
    assert PROFILES["full"]["train_size"] is None and PROFILES["full"]["test_size"] is None


def test_overrides_replace_profile_values_in_any_case_and_none_is_ignored():
    params = resolve_params("smoke", EPOCHS=5, lr=0.01, MAX_LEN=None, truncation="tail")
    assert params.epochs == 5 and params.lr == 0.01 and params.truncation == "tail"
    assert params.max_len == PROFILES["smoke"]["max_len"]
    assert PROFILES["smoke"]["epochs"] == 4  # the table itself is untouched
    with pytest.raises(AttributeError):
        params.no_such_thing
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.epochs = 3  # resolved once, never changed behind a notebook's back
    assert params.replace(epochs=3).epochs == 3 and params.epochs == 5
    with pytest.raises(ValueError, match="EPOCHS"):
        params.replace(epochs=0)


def test_unknown_profile_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="Unknown PROFILE 'huge'") as err:
        resolve_params("huge")
    assert "quick" in str(err.value) and "smoke" in str(err.value)


def test_unknown_parameter_is_refused():
    with pytest.raises(ValueError, match=r"Unknown parameter\(s\) EPOCS: the profiles take .*EPOCS → did you mean EPOCHS\?"):
        resolve_params("smoke", EPOCS=3)


@pytest.mark.parametrize("name, value", [
    ("MAX_LEN", 0), ("MAX_LEN", -5), ("MAX_LEN", 12.5), ("EPOCHS", True), ("BATCH_SIZE", "64"),
    ("TRAIN_SIZE", 0), ("VOCAB_SIZE", 2), ("DROPOUT", 1.0), ("DROPOUT", -0.1), ("TRUNCATION", "middle"),
    ("SPLIT", "x"), ("VAL_FRACTION", 0.5), ("LR", 0), ("SEED", 1.5), ("REMOVE_STOPWORDS", "yes"),
    ("LR", "1e-3"), ("LR", "fast"), ("LR", float("nan")), ("DROPOUT", "0.3"), ("DROPOUT", [0.3]), ("LR", True),
    ("ENSEMBLE", 0), ("ENSEMBLE", "3"), ("VAT", -0.25), ("VAT", "0.25"), ("LM_BACKWARD", 1),
    ("LM_BACKWARD", "True"),
])
def test_bad_values_are_refused_naming_the_parameter(name, value):
    with pytest.raises(ValueError, match=name):
        resolve_params("smoke", **{name: value})


def test_float_parameters_are_stored_as_floats():
    params = resolve_params("smoke", lr=1, dropout=0, val_fraction=0.25)
    assert (params.lr, params.dropout, params.val_fraction) == (1.0, 0.0, 0.25)
    assert all(isinstance(v, float) for v in (params.lr, params.dropout, params.val_fraction))


def test_none_sizes_mean_all():
    assert resolve_params("smoke", train_size=None).train_size == PROFILES["smoke"]["train_size"]
    assert resolve_params("full").train_size is None


def test_seed_everything_repeats_random_draws():
    config.seed_everything(3)
    a = torch.rand(4)
    config.seed_everything(3)
    assert torch.equal(a, torch.rand(4))


def test_choose_device(monkeypatch):
    monkeypatch.delenv("SENTIMENT_DEVICE", raising=False)
    assert config.choose_device("cpu").type == "cpu"
    monkeypatch.setenv("SENTIMENT_DEVICE", "cpu")
    assert config.choose_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="^DEVICE must be"):
        config.choose_device("tpu")
    monkeypatch.setenv("SENTIMENT_DEVICE", "gpu")  # the bad value came from the environment: say so
    with pytest.raises(ValueError, match=r"^\$SENTIMENT_DEVICE must be .*got 'gpu'"):
        config.choose_device("auto")


def test_precision_is_bfloat16_only_where_the_hardware_has_it(monkeypatch):
    from sentiment_lib import config

    monkeypatch.delenv("SENTIMENT_PRECISION", raising=False)
    monkeypatch.setattr(config, "cpu_has_native_bf16", lambda: True)
    assert config.choose_precision("auto", "cpu") == "bfloat16"
    assert config.precision_description("auto", "cpu") == "bfloat16 autocast (auto: native bf16)"
    monkeypatch.setattr(config, "cpu_has_native_bf16", lambda: False)
    assert config.choose_precision("auto", "cpu") is None
    assert config.precision_description("auto", "cpu") == "float32 (auto: no native bf16)"
    assert config.choose_precision("bfloat16", "cpu") == "bfloat16"  # forced: correct, only slower
    assert config.choose_precision("float32", "cpu") is None
    monkeypatch.setenv("SENTIMENT_PRECISION", "bfloat16")
    assert config.choose_precision("auto", "cpu") == "bfloat16"
    with pytest.raises(ValueError, match="PRECISION must be one of"):
        config.choose_precision("fp16", "cpu")


def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch):
    from sentiment_lib import config

    monkeypatch.setattr(config, "_cpu_info", lambda: ("model name : X", "flags : fpu avx2 avx512f"))
    assert not config.cpu_has_native_bf16()
    monkeypatch.setattr(config, "_cpu_info", lambda: ("flags : fpu avx512f avx512_bf16",))
    assert config.cpu_has_native_bf16()
    monkeypatch.setattr(config, "_cpu_info", lambda: ("flags : fpu amx_bf16 amx_tile",))
    assert config.cpu_has_native_bf16()


def test_precision_parameter_is_validated_and_smoke_stays_float32():
    assert resolve_params("quick").precision == "auto" and resolve_params("full").precision == "auto"
    assert resolve_params("smoke").precision == "float32"  # snapshots identical with and without bf16
    assert resolve_params("quick", PRECISION="float32").precision == "float32"
    with pytest.raises(ValueError, match="PRECISION must be one of"):
        resolve_params("quick", PRECISION="half")


def test_the_profiles_are_a_file_a_user_can_copy_a_table_of(tmp_path):
    from sentiment_lib import profiles

    text = profiles.PROFILES_FILE.read_text()
    mine = text.split("[quick.data]")[1].split("# full:")[0].replace("[quick.", "[mine.")
    copied = tmp_path / "profiles.toml"
    copied.write_text(text + "\n[mine.data]" + mine.replace("train_size = 10000", "train_size = 500"))
    rows, section_of = profiles._read_profiles(copied)
    assert rows["mine"] == {**rows["quick"], "train_size": 500}
    assert rows["full"]["train_size"] is None  # "all" in the file
    assert section_of["lr"] == "optimisation" and section_of["lm_hidden"] == "data"
    assert set(section_of.values()) == set(profiles.SECTIONS)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("[smoke.machine]", "[smoke.hardware]"), "unknown section"),
    (lambda t: t.replace("seed = 42\nseeds = 2", "seeds = 2"), "same parameters"),
    (lambda t: t.replace("[smoke.study]\n", "[smoke.study]\nlr = 0.1\n"), "one section"),
])
def test_a_broken_profiles_file_names_what_is_wrong(tmp_path, edit, message):
    from sentiment_lib import profiles

    broken = tmp_path / "profiles.toml"
    broken.write_text(edit(profiles.PROFILES_FILE.read_text()))
    with pytest.raises(ValueError, match=message):
        profiles._read_profiles(broken)
