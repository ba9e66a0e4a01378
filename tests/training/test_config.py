import pytest

from training import Config, load_config, train


@pytest.mark.parametrize("overrides,match", [
    (["dataset=imagenet"], "dataset = 'imagenet'"),
    (["partition=weird"], "partition = 'weird'"),
    (["clients=0"], "clients = 0"),
    (["clients=-2"], "clients = -2"),
    (["algorithm=nope"], "algorithm = 'nope'"),
    (["no_such_key=1"], "unknown key 'no_such_key'"),
    (["rounds=two"], "rounds = 'two'"),
    (["dataset=cifar10"], "data_dir"),
    (["lam=inf"], "lam = inf must be finite and >= 0"),
    (["K_per_sample=inf"], "K_per_sample = inf must be finite"),
    (["lam=-1"], "lam = -1.0 must be finite and >= 0"),
    (["c=-0.5"], "c = -0.5 must be >= 0"),
])
def test_bad_config_is_rejected_naming_field_and_value(overrides, match):
    with pytest.raises(ValueError, match=match):
        load_config(None, overrides)


def test_more_clients_than_samples_fails_before_training(tmp_path):
    cfg = Config(clients=50, max_samples=40)
    with pytest.raises(ValueError, match="clients = 50 exceeds the 40 samples"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_missing_data_folder_fails_before_training(tmp_path):
    cfg = Config(dataset="fashion_mnist", data_dir=str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="absent"):
        train(cfg, tmp_path / "run", progress=False)


def test_toml_file_and_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('clients = 5\nbudget = "inf"\n[unused]\n')
    with pytest.raises(ValueError, match="unknown key 'unused'"):
        load_config(f)
    f.write_text("clients = 5\nlam = 2\n")
    cfg = load_config(f, ["rounds=3"])
    assert (cfg.clients, cfg.lam, cfg.rounds) == (5, 2.0, 3)
