import json

import pytest

from metaenvs.cli import main


def test_list_and_info(capsys):
    assert main(["list", "--family", "Synthetic"]) == 0
    assert "Synthetic/Sinusoid-v0" in capsys.readouterr().out
    assert main(["info", "Synthetic/Sinusoid-v0"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "supervised" and info["splits"]["train"] == "infinite"
    assert len(info["protocol"]["hash"]) == 64


def test_unknown_id_is_a_clean_error(capsys):
    assert main(["info", "Synthetic/Sinusiod-v0"]) == 2
    assert "Did you mean: Synthetic/Sinusoid-v0" in capsys.readouterr().err


def test_train_then_evaluate(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dist",
                "Synthetic/Sinusoid-v0",
                "--algo",
                "reptile",
                "--meta-steps",
                "3",
                "--meta-batch",
                "2",
                "--inner-steps",
                "3",
                "--out",
                str(run),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (run / "init.safetensors").is_file() and (run / "init.json").is_file()
    out = tmp_path / "result.json"
    assert (
        main(
            [
                "evaluate",
                "--dist",
                "Synthetic/Sinusoid-v0",
                "--init",
                str(run / "init.safetensors"),
                "--seeds",
                "0",
                "--budget",
                "2",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["init"]["sha256"] and len(result["records"]) == 100
    assert "IQM mse [95% CI]" in capsys.readouterr().out


def test_train_rl_distribution(tmp_path):
    assert (
        main(
            [
                "train",
                "--dist",
                "Control/CartPolePhysics-v0",
                "--algo",
                "reptile",
                "--meta-steps",
                "1",
                "--meta-batch",
                "1",
                "--inner-steps",
                "80",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )


def test_quickstart_small(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path), "--meta-steps", "20", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "reptile" in out and "scratch" in out and "IQM mse [95% CI]" in out
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000


def test_help_reads_well(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("list", "info", "train", "evaluate", "quickstart"):
        assert command in text


@pytest.mark.parametrize("algo", ["leap", "reptile", "fomaml", "fomamlpp", "cts", "mtl", "scratch"])
@pytest.mark.parametrize(
    ("dist", "steps"), [("Synthetic/Sinusoid-v0", "3"), ("Control/CartPolePhysics-v0", "60")]
)
def test_train_every_algorithm(tmp_path, algo, dist, steps):
    args = [
        "train",
        "--dist",
        dist,
        "--algo",
        algo,
        "--meta-steps",
        "2",
        "--meta-batch",
        "2",
        "--inner-steps",
        steps,
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    assert main(args) == 0
    assert (tmp_path / "init.safetensors").is_file()


def test_train_refuses_an_unknown_algorithm(tmp_path, capsys):
    args = ["train", "--dist", "Synthetic/Sinusoid-v0", "--algo", "maml2", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "invalid choice: 'maml2'" in capsys.readouterr().err


def test_train_says_clearly_when_capabilities_do_not_fit(tmp_path, capsys):
    args = [
        "train",
        "--dist",
        "Control/CartPolePhysics-v0",
        "--algo",
        "maml",
        "--meta-steps",
        "1",
        "--meta-batch",
        "1",
        "--inner-steps",
        "50",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "MAML needs an agent with differentiable" in err and "leap, reptile, fomaml" in err


@pytest.mark.parametrize("algo", ["maml", "imaml", "amaml", "adjoint"])
def test_train_second_order_algorithms(tmp_path, algo):
    args = [
        "train",
        "--dist",
        "Synthetic/CosMixture50shot-v0",
        "--algo",
        algo,
        "--meta-steps",
        "1",
        "--meta-batch",
        "2",
        "--inner-steps",
        "3",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    assert main(args) == 0


def test_data_path(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("METAENVS_DATA", str(tmp_path))
    assert main(["data", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path)
