"""One vocabulary across the CLI (docs/cli.md): spellings, deprecated aliases, names, help.

Each test runs the real command through click; the few that train use a tiny run.
"""

import json

import pytest
from click.testing import CliRunner

from ipfl.cli import COMMANDS, main
from training import Config, RunDir, train

TINY = ["--set", "clients=4", "--set", "rounds=1", "--set", "epochs=1", "--set", "hidden=16",
        "--set", "max_samples=400", "--quiet"]


def _run(args, **kw):
    return CliRunner().invoke(main, args, catch_exceptions=False, **kw)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("fin") / "run"
    train(Config(clients=4, rounds=1, epochs=1, hidden=16, max_samples=400), out,
          progress=False)
    return out


# ----- did you mean --------------------------------------------------------------------------
@pytest.mark.parametrize("args,hint", [
    (["trian"], "No such command 'trian' (did you mean 'train'?)"),
    (["audit-rnu", "x"], "(did you mean 'audit-run'?)"),
    (["flower", "simulat"], "(did you mean 'simulate'?)"),
    (["train", "--sed", "1"], "(Did you mean one of: '--seed', '--set'?)"),
    (["market", "--explian", "1"], "'--explain'?)"),
    (["compare", "--solver", "mlip"], "(did you mean 'milp'?)"),
    (["market", "--variant", "skp"], "(did you mean 'skip'?)"),
])
def test_a_near_miss_is_refused_with_did_you_mean(args, hint):
    res = _run(args)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert hint in res.output, res.output


@pytest.mark.parametrize("key,value,hint", [
    ("algorithm", "fedavgg", "'fedavg'"), ("dataset", "digit", "'digits'"),
    ("attack", "sign_flip_updat", "'sign_flip_update'"), ("algorithm", "Dito", "'ditto'"),
])
def test_a_mistyped_name_in_set_is_one_line_with_did_you_mean(key, value, hint):
    res = _run(["train", "--set", f"{key}={value}"])
    assert res.exit_code == 2
    line, = res.output.strip().splitlines()
    assert line.startswith(f"Error: config: {key} = {value!r} is not one of")
    assert line.endswith(f"(did you mean {hint}?)")


def test_names_are_case_insensitive_and_stored_as_registered(tmp_path):
    """--set algorithm=FedAvg, a [FedProx] table and a dataset in capitals all work."""
    res = _run(["train", *TINY, "--set", "algorithm=FedProx", "--set", "FedProx.mu=0.5",
                "--set", "dataset=DIGITS", "--run-dir", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (cfg["algorithm"], cfg["dataset"], cfg["fedprox"]["mu"]) == ("fedprox", "digits", 0.5)
    assert Config(algorithm="IPFL", roles="trader:2,attacker:2", clients=4,
                  attack="Sign_Flip_Update").attack == "sign_flip_update"


def test_experiment_names_methods_and_settings_are_case_insensitive():
    from ipfl.experiments import check_request

    req = check_request("Performance", "tiny", seeds=1, methods=("IPFL", "Local"),
                        settings=("niid",))
    assert req["experiment"] == "performance"
    assert req["methods"] == ("ipfl", "local") or set(req["methods"]) == {"ipfl", "local"}
    with pytest.raises(ValueError, match=r"did you mean 'performance'\?"):
        check_request("perfomance", "tiny", seeds=1)


def test_solver_and_variant_choices_ignore_case():
    res = _run(["market", "-m", "3", "--variant", "SKIP"])
    assert res.exit_code == 0 and "variant 'skip'" in res.output


# ----- help is never cut ---------------------------------------------------------------------
@pytest.mark.parametrize("width", [60, 200])
def test_the_command_list_shows_every_summary_in_full(width):
    res = _run(["--help"], terminal_width=width)
    listing = res.output.split("Commands:")[1]
    assert res.exit_code == 0 and "..." not in listing
    flat = " ".join(listing.split())
    for name, (_, summary) in COMMANDS.items():
        assert f"{name} {summary}" in flat
    sub = _run(["flower", "-h"], terminal_width=width)
    assert "..." not in sub.output.split("Commands:")[1]
    assert "one virtual SuperNode per client" in " ".join(sub.output.split())


# ----- resume, run directory, seed, out ------------------------------------------------------
def test_old_resume_spelling_still_works_with_a_notice(finished, tmp_path):
    """train --resume --run-dir DIR (flower's old form) is train --resume DIR."""
    res = _run(["train", "--resume", "--run-dir", str(finished), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "note: --resume --run-dir DIR is deprecated; use --resume DIR" in res.output
    new = _run(["train", "--resume", str(finished), "--quiet"])
    assert new.exit_code == 0 and "deprecated" not in new.output


def test_resume_without_a_directory_is_one_line():
    res = _run(["train", "--resume"])
    assert res.exit_code == 2
    assert res.output == "Error: --resume: give the run directory, --resume RUN_DIR\n"


def test_seed_and_set_seed_are_one_key(tmp_path, finished):
    res = _run(["train", *TINY, "--seed", "3", "--run-dir", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "a" / "config.json").read_text())["seed"] == 3
    assert "seed 3" in res.output  # the start line
    same = _run(["train", *TINY, "--seed", "3", "--set", "seed=3", "--run-dir",
                 str(tmp_path / "b")])
    assert same.exit_code == 0, same.output
    assert RunDir(tmp_path / "a").read_metrics() == RunDir(tmp_path / "b").read_metrics()
    clash = _run(["train", "--seed", "3", "--set", "seed=4"])
    assert clash.output == "Error: --seed 3 and --set seed=4 disagree; give one of them\n"
    resumed = _run(["train", "--resume", str(finished), "--seed", "1"])
    assert resumed.exit_code == 2 and "--seed 1: cannot change on resume" in resumed.output


def test_demo_out_is_a_folder_and_run_dir_is_its_deprecated_spelling(tmp_path):
    res = _run(["demo", "--run-dir", str(tmp_path / "a"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2
    assert res.output.splitlines() == [
        "note: ipfl demo --run-dir DIR is deprecated; use --out DIR (a folder of two run "
        "directories)", "Error: --run-dir: give --out only"]


def test_reproduce_writes_file_and_out_is_its_deprecated_spelling(tmp_path, monkeypatch):
    import ipfl.experiments.reproduce as rep

    monkeypatch.setattr(rep, "build", lambda root: "# text\n")
    monkeypatch.setattr(rep, "verdicts", lambda text: [])
    new = _run(["reproduce", "--file", str(tmp_path / "R.md")])
    assert new.exit_code == 0 and (tmp_path / "R.md").read_text() == "# text\n"
    assert "deprecated" not in new.output
    old = _run(["reproduce", "--out", str(tmp_path / "S.md")])
    assert old.exit_code == 0 and (tmp_path / "S.md").read_text() == "# text\n"
    assert "note: ipfl reproduce --out FILE is deprecated; use --file FILE" in old.output


def test_market_explain_alone_explains_every_client():
    """--explain needs no argument: alone it prints the trace of every client."""
    res = _run(["market", "-m", "4", "--explain"])
    assert res.exit_code == 0, res.output
    for i in range(4):
        assert f"Algorithm 2 (variant 'paper') for client {i}:" in res.output
    one = _run(["market", "-m", "4", "--explain", "2"])
    assert one.output.count("Algorithm 2 (variant 'paper') for client") == 1
    bad = _run(["market", "-m", "4", "--explain", "two"])
    assert bad.exit_code == 2 and "--explain: 'two' is not a client index or 'all'" in bad.output
