"""Run settings are defined once: pyproject's run config, `emofl simulate` and `flwr run .` all
read `RUN_SETTINGS`, and refuse the same bad values in one line naming the setting."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cli_helpers import main_in_process

from emofl.cli import build_parser
from emofl.common.errors import SettingsError, UserError
from emofl.common.protocol.choices import MODEL_KINDS, SMOOTHING
from emofl.common.protocol.run_settings import RUN_SETTINGS, RunSettings

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def command_parser(name: str):
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    return commands.choices[name]


def simulate_parser():
    return command_parser("simulate")


def test_pyproject_run_config_has_every_setting_with_its_default():
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["flwr"]["app"]["config"]
    assert config == {spec.key: spec.default for spec in RUN_SETTINGS}
    assert RunSettings.from_config(config) == RunSettings()


def test_simulate_options_are_exactly_the_settings():
    options = {action.dest: action for action in simulate_parser()._actions
               if action.dest != "help"}
    on_cli = [spec for spec in RUN_SETTINGS if spec.on_cli]
    assert set(options) == {spec.name for spec in on_cli}
    for spec in on_cli:
        action = options[spec.name]
        assert action.option_strings == [spec.option]
        assert action.default == spec.option_default
        assert action.help.startswith(spec.help.replace("%", "%%"))
    flags = {spec.name: spec.option for spec in on_cli}
    assert (flags["num_clients"], flags["learning_rate"], flags["key_dir"], flags["dp"]) == (
        "--clients", "--lr", "--keys", "--no-dp")


def test_simulate_defaults_make_the_default_settings_but_for_out():
    args = simulate_parser().parse_args([])
    values = {spec.name: getattr(args, spec.name) for spec in RUN_SETTINGS if spec.on_cli}
    assert RunSettings(**values) == RunSettings(out="runs/simulate")


def test_no_dp_and_epsilon_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        simulate_parser().parse_args(["--no-dp", "--epsilon", "3"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert simulate_parser().parse_args(["--no-dp"]).dp is False


def test_other_commands_offer_the_allowed_values_defined_once():
    def choices(command: str, dest: str) -> tuple:
        return next(a for a in command_parser(command)._actions if a.dest == dest).choices

    assert tuple(choices("analyze", "smoothing")) == SMOOTHING
    assert tuple(choices("pretrain", "model_kind")) == MODEL_KINDS


BAD_VALUES = [
    ("num-clients", "--clients", "0", "at least 1"),
    ("rounds", "--rounds", "-2", "at least 1"),
    ("epsilon", "--epsilon", "0", "positive"),
    ("delta", "--delta", "1.5", "in (0, 1)"),
    ("noise-multiplier", "--noise-multiplier", "-1", "0 or more"),
    ("max-grad-norm", "--max-grad-norm", "0", "positive"),
    ("learning-rate", "--lr", "-0.1", "positive"),
    ("alpha", "--alpha", "-0.5", "positive (or 0 for IID)"),
    ("batch-size", "--batch-size", "0", "at least 1"),
    ("accountant", "--accountant", "gdp", "one of rdp, prv"),
    ("trainable", "--trainable", "some", "one of all, top, projection, head"),
    ("secure-agg", "--secure-agg", "rsa", "one of none, ckks"),
    ("epsilon", "--epsilon", "nan", "finite"),
]


@pytest.mark.parametrize("key, flag, value, reason", BAD_VALUES)
def test_run_config_refuses_a_bad_value_naming_the_key(key, flag, value, reason):
    raw = value if key in ("accountant", "trainable", "secure-agg") else float(value)
    with pytest.raises(SettingsError) as info:
        RunSettings.from_config({key: raw})
    message = str(info.value)
    assert "\n" not in message and message.startswith(key) and reason in message


@pytest.mark.parametrize("key, flag, value, reason", BAD_VALUES)
def test_simulate_refuses_a_bad_value_in_one_line_naming_the_flag(tmp_path, capsys, key, flag,
                                                                   value, reason):
    code, err = main_in_process(capsys, "simulate", flag, value, "--out", str(tmp_path / "r"))
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"emofl simulate: error: {flag} must be") and reason in err[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("config, fragment", [
    ({"rounds": "abc"}, "rounds must be an integer, got 'abc'"),
    ({"rounds": 2.5}, "rounds must be an integer, got 2.5"),
    ({"epsilon": "lots"}, "epsilon must be a number, got 'lots'"),
    ({"dp": "maybe"}, "dp must be true or false, got 'maybe'"),
    ({"seed": True}, "seed must be an integer, got True"),
])
def test_run_config_refuses_wrongly_typed_values(config, fragment):
    with pytest.raises(SettingsError, match=fragment.replace("(", r"\(")):
        RunSettings.from_config(config)


def test_run_config_converts_primitive_values_and_ignores_other_keys():
    settings = RunSettings.from_config({"rounds": "5", "epsilon": 4, "dp": "false",
                                        "num_clients": 2.0, "num-supernodes": 9, "x": "y"})
    assert (settings.rounds, settings.epsilon, settings.dp, settings.num_clients) == (
        5, 4.0, False, 2)
    assert RunSettings.from_config(settings.to_config()) == settings


def test_settings_are_checked_however_they_are_made():
    with pytest.raises(SettingsError, match="num-clients must be at least 1, got 0"):
        RunSettings(num_clients=0)
    with pytest.raises(SettingsError, match="rounds must be an integer"):
        RunSettings(rounds="3")
    assert issubclass(SettingsError, UserError)


def test_the_cli_starts_without_heavy_libraries():
    code = ("import sys; from emofl.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'opacus', 'flwr', 'tenseal', 'cv2', 'grpc') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
