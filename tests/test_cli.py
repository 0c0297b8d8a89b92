import json

import pytest
from click.testing import CliRunner
from intents_files import tiny as tiny_intents

from chatbot.cli import main
from training.checkpoint import load_checkpoint


@pytest.fixture
def runner():
    return CliRunner()


def test_train_writes_checkpoint_and_reports_epochs(runner, tmp_path):
    model = tmp_path / "m" / "chatbot.pt"
    plot = tmp_path / "loss.png"
    result = runner.invoke(
        main, ["train", "--intents", str(tiny_intents(tmp_path)), "--model", str(model), "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    assert "fit   epoch   1/" in result.output and "val_acc" in result.output
    assert f"Saved {model}" in result.output
    assert load_checkpoint(model)["tags"] == ["greet", "bye"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_on_broken_file_fails_cleanly_and_keeps_old_checkpoint(runner, tmp_path, model_copy):
    before = model_copy.read_bytes()
    broken = tmp_path / "broken.json"
    broken.write_text('{"intents": [{"tag": "x", "patterns": []}]}')
    result = runner.invoke(main, ["train", "--intents", str(broken), "--model", str(model_copy)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"Error: {broken}: no intent has patterns to learn from" in result.output
    assert model_copy.read_bytes() == before


def test_train_interrupted_keeps_old_checkpoint(runner, tmp_path, model_copy, monkeypatch):
    before = model_copy.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("training.train_file.train_model", interrupted)
    result = runner.invoke(main, ["train", "--intents", str(tiny_intents(tmp_path)), "--model", str(model_copy)])
    assert result.exit_code == 1
    assert f"interrupted; {model_copy} was not changed" in result.output
    assert model_copy.read_bytes() == before


def test_train_if_needed_skips_current_and_retrains_stale(runner, tmp_path):
    intents, model = tiny_intents(tmp_path), tmp_path / "chatbot.pt"
    assert runner.invoke(main, ["train", "--intents", str(intents), "--model", str(model)]).exit_code == 0
    skipped = runner.invoke(main, ["train", "--if-needed", "--intents", str(intents), "--model", str(model)])
    assert "is up to date" in skipped.output
    intents.write_text(intents.read_text().replace("farewell", "so long"))
    retrained = runner.invoke(main, ["train", "--if-needed", "--intents", str(intents), "--model", str(model)])
    assert "Saved" in retrained.output


def test_predict_prints_one_json_object_per_message(runner, model_copy):
    result = runner.invoke(main, ["predict", "--model", str(model_copy), "hello there", "blorp zzz"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["text"] for line in lines] == ["hello there", "blorp zzz"]
    assert set(lines[0]) >= {"text", "intent", "confidence", "fallback", "response", "alternatives"}
    assert lines[0]["intent"] == "greeting" and lines[0]["fallback"] is False
    assert lines[1]["fallback"] is True
    assert all(set(a) == {"intent", "confidence"} for a in lines[0]["alternatives"])


def test_predict_reads_stdin_one_message_per_line(runner, model_copy):
    result = runner.invoke(main, ["predict", "--model", str(model_copy)], input="hi\n\nthank you so much\n")
    assert [json.loads(line)["intent"] for line in result.output.splitlines()] == ["greeting", "thanks"]


def test_predict_threshold_option(runner, model_copy):
    result = runner.invoke(main, ["predict", "--model", str(model_copy), "--threshold", "1", "hello"])
    assert json.loads(result.output)["fallback"] is True


def test_predict_without_model_says_train_first(runner, tmp_path):
    result = runner.invoke(main, ["predict", "--model", str(tmp_path / "none.pt"), "hi"])
    assert result.exit_code == 1
    assert "run `chatbot train` first" in result.output
    assert "Traceback" not in result.output


def test_predict_with_corrupt_model_is_one_line(runner, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    result = runner.invoke(main, ["predict", "--model", str(bad), "hi"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "not a readable chatbot checkpoint" in result.output


def test_chat_answers_until_quit(runner, model_copy):
    result = runner.invoke(main, ["chat", "--model", str(model_copy), "-v"], input="hello\ntell me a joke\nquit\n")
    assert result.exit_code == 0
    assert result.output.count("bot> ") == 2
    assert "[greeting" in result.output and "Bye!" in result.output


def test_chat_ends_cleanly_on_end_of_input(runner, model_copy):
    result = runner.invoke(main, ["chat", "--model", str(model_copy)], input="hi\n")
    assert result.exit_code == 0 and "Bye!" in result.output


def test_house_prices_demo_output(runner, tmp_path):
    plot = tmp_path / "hp.png"
    result = runner.invoke(main, ["house-prices", "--plot", str(plot)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("Epoch [10/100], Loss: ")
    assert sum(line.startswith("Epoch [") for line in lines) == 10
    predicted = next(line for line in lines if line.startswith("Predicted price"))
    assert "3,000 sqft" in predicted
    assert "Not converged yet" in result.output and "600.00" in result.output
    assert plot.exists()


def test_house_prices_converges_with_more_epochs(runner):
    result = runner.invoke(main, ["house-prices", "--epochs", "6000"])
    assert "Converged" in result.output


def test_diverging_training_is_refused_and_keeps_old_checkpoint(runner, tmp_path, model_copy):
    before = model_copy.read_bytes()
    intents = tiny_intents(tmp_path)
    result = runner.invoke(main, ["train", "--intents", str(intents), "--model", str(model_copy), "--lr", "1e12"])
    assert result.exit_code == 1
    assert "training diverged at epoch" in result.output and f"{model_copy} was not changed" in result.output
    assert model_copy.read_bytes() == before


def test_checkpoint_with_non_finite_weights_is_refused(runner, tmp_path, trained_model):
    import torch

    ckpt = load_checkpoint(trained_model)
    ckpt["state_dict"]["fc3_bias"][0, 0, 0] = float("nan")
    bad = tmp_path / "nan.pt"
    torch.save(ckpt, bad)
    result = runner.invoke(main, ["predict", "--model", str(bad), "hi"])
    assert result.exit_code == 1
    assert "weights that are not finite numbers" in result.output


def test_plot_with_unknown_format_is_a_clear_error(runner, tmp_path):
    model = tmp_path / "chatbot.pt"
    result = runner.invoke(
        main, ["train", "--intents", str(tiny_intents(tmp_path)), "--model", str(model), "--plot", "loss.xyz"]
    )
    assert result.exit_code == 1
    assert "cannot write loss.xyz: use a .png, .svg, .pdf file name (the model was saved)" in result.output
    assert model.exists()


def test_house_prices_divergence_is_reported(runner):
    result = runner.invoke(main, ["house-prices", "--lr", "1"])
    assert result.exit_code == 1
    assert "training diverged" in result.output and "lr 1.0 is too large" in result.output
