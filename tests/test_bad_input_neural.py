"""Bad checkpoints and options of ``mdm-theory neural`` are refused (exit 2, one line), and a
checkpoint is checked against its language on load (issue 13)."""

import os
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _bad_input import refused  # noqa: E402
from mdm_exact.languages import NGram  # noqa: E402
from neural.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from neural.data import language_to_dict  # noqa: E402
from neural.model import ModelConfig, Transformer  # noqa: E402


def _lang(V, seed=0):
    rng = np.random.default_rng(seed)
    return NGram(2, np.full(V, 1.0 / V), rng.dirichlet(np.ones(V), size=V))


@pytest.fixture
def ckpt(tmp_path):
    """A tiny untrained 2-token MDM checkpoint (L = 4) and its folder."""
    lang = _lang(2)
    net = Transformer(ModelConfig(vocab_size=2, block_size=4, n_layer=1, n_head=2, n_embd=16, causal=False)).eval()
    path = tmp_path / "m.pt"
    save_checkpoint(path, net, kind="mdm", step=0, seed=0, L=4, language="tiny", language_params=language_to_dict(lang))
    return path


def _variant(src, dst, **changes):
    ck = torch.load(src, weights_only=True)
    ck.update(changes)
    torch.save(ck, dst)
    return dst


def _evaluate(path):
    return ["neural", "evaluate", "--checkpoint", path, "--steps", "2", "--num-samples", "4", "--kl-contexts", "0"]


def test_a_checkpoint_with_another_languages_parameters_is_refused(ckpt, tmp_path, capsys):
    bad = _variant(ckpt, tmp_path / "v16.pt", language_params=language_to_dict(_lang(16)))
    refused(capsys, _evaluate(bad), "V = 16", "vocab_size = 2", folder=tmp_path)
    refused(capsys, ["neural", "sample", "--checkpoint", bad, "--steps", "2", "--num-samples", "2"], "vocab_size = 2",
            folder=tmp_path)


@pytest.mark.parametrize("change, needle", [
    ({"kind": "ar"}, "causal = False"),
    ({"kind": "gpt"}, "kind must be"),
    ({"L": 10**6}, "block_size = 4"),
    ({"L": 0}, "L = 0"),
    ({"model_config": "x"}, "must be dicts"),
    ({"state_dict": {"w": 1}}, "tensors only"),
    ({"format": "other"}, "not an mdm-theory neural checkpoint"),
], ids=["kind-vs-causal", "kind", "L-too-long", "L-zero", "config", "state", "format"])
def test_inconsistent_checkpoints_are_refused(ckpt, tmp_path, capsys, change, needle):
    refused(capsys, _evaluate(_variant(ckpt, tmp_path / "bad.pt", **change)), needle, folder=tmp_path)


def test_weights_of_another_shape_are_refused(ckpt, tmp_path, capsys):
    ck = torch.load(ckpt, weights_only=True)
    cfg = dict(ck["model_config"], n_embd=32)
    refused(capsys, _evaluate(_variant(ckpt, tmp_path / "shape.pt", model_config=cfg)), "do not fit", folder=tmp_path)


def test_malformed_files_are_refused_and_nothing_in_them_runs(ckpt, tmp_path, capsys):
    data = ckpt.read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "junk.pt").write_bytes(b"\x80\x04junk" * 20)
    (tmp_path / "dir.pt").mkdir()
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"format": "mdm-theory-neural-1", "x": Evil()}))
    for name, needle in [("half.pt", "cannot be read"), ("empty.pt", "cannot be read"), ("junk.pt", "cannot be read"),
                         ("dir.pt", "is a directory"), ("evil.pt", "nothing in it was run")]:
        refused(capsys, _evaluate(tmp_path / name), needle, folder=tmp_path)
    assert not marker.exists()
    refused(capsys, _evaluate(tmp_path / "missing.pt"), "does not exist", folder=tmp_path)


def test_load_checkpoint_api_raises_value_error(ckpt, tmp_path):
    (tmp_path / "half.pt").write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(tmp_path / "half.pt")
    net, ck = load_checkpoint(ckpt)
    assert ck["L"] == 4


TRAIN = ["neural", "train", "--language", "paper-2gram", "--kind", "mdm", "--length", "4", "--layers", "1",
         "--hidden", "16", "--heads", "2", "--max-steps", "2", "--eval-every", "1", "--val-size", "4", "--batch-size", "2"]


@pytest.mark.parametrize("extra, needle", [
    (["-o", "{tmp}/missing/x.pt"], "does not exist (create it first)"),
    (["-o", "{tmp}"], "is a directory"),
    (["-o", "{tmp}/x.pt", "--batch-size", "0"], "--batch-size: expected a positive integer, got 0"),
    (["-o", "{tmp}/x.pt", "--lr", "nan"], "--lr: expected a finite number > 0"),
    (["-o", "{tmp}/x.pt", "--lr", "-1"], "--lr"),
    (["-o", "{tmp}/x.pt", "--max-steps", "0"], "--max-steps"),
    (["-o", "{tmp}/x.pt", "--leak-target", "0"], "--leak-target: expected a finite number > 0"),
    (["-o", "{tmp}/x.pt", "--ema", "1"], "--ema: expected 0 <= value < 1, got 1.0"),
    (["-o", "{tmp}/x.pt", "--ema", "nan"], "--ema: expected 0 <= value < 1"),
    (["-o", "{tmp}/x.pt", "--tail-frac", "0"], "--tail-frac: expected 0 < value <= 1"),
    (["-o", "{tmp}/x.pt", "--warmup-frac", "1"], "--warmup-frac: expected 0 <= value < 1"),
    (["-o", "{tmp}/x.pt", "--state", "{tmp}/nope/s.pt"], "--state: the folder"),
    (["-o", "{tmp}/x.pt", "--confirm-sequences", "-1"], "--confirm-sequences: expected an integer >= 0"),
    (["-o", "{tmp}/x.pt", "--t-power", "0"], "--t-power: expected a finite number > 0, got 0.0"),
    (["-o", "{tmp}/x.pt", "--t-power", "nan"], "--t-power: expected a finite number > 0"),
    (["-o", "{tmp}/x.pt", "--t-power", "2", "--kind", "ar"], "--t-power applies to MDM training times only"),
    (["-o", "{tmp}/x.pt", "--seed", "-1"], "--seed: expected a seed, an integer >= 0, got -1"),
    (["-o", "{tmp}/x.pt", "--language-seed", "-4"], "--language-seed: expected a seed, an integer >= 0, got -4"),
], ids=["missing-folder", "directory", "batch-0", "lr-nan", "lr-negative", "steps-0", "leak-0", "ema-1", "ema-nan",
        "tail-0", "warmup-1", "state-folder", "confirm-negative", "t-power-0", "t-power-nan", "t-power-ar",
        "seed", "language-seed"])
def test_train_checks_options_before_training(tmp_path, capsys, extra, needle):
    refused(capsys, TRAIN + [e.format(tmp=tmp_path) for e in extra], needle, folder=tmp_path)


def test_sample_and_evaluate_check_batch_size_and_output(ckpt, tmp_path, capsys):
    refused(capsys, _evaluate(ckpt) + ["--batch-size", "0"], "--batch-size", folder=tmp_path)
    refused(capsys, _evaluate(ckpt) + ["-o", tmp_path / "no" / "r.json"], "does not exist", folder=tmp_path)
    refused(capsys, ["neural", "sample", "--checkpoint", ckpt, "--steps", "2", "--num-samples", "2", "-o",
                     tmp_path / "no" / "t.npy"], "does not exist", folder=tmp_path)


def test_a_diverging_training_is_one_line(tmp_path, capsys):
    refused(capsys, TRAIN + ["-o", tmp_path / "x.pt", "--lr", "1e6"], "training diverged", "lower --lr",
            folder=tmp_path, max_seconds=60)


def test_train_logs_no_nan_loss_before_the_first_step(tmp_path):
    from neural.cli import cmd_train
    import contextlib
    import io

    from mdm_exact.runtime.cli import build_parser

    args = build_parser("neural").parse_args(
        ["neural", "train", "--language", "paper-2gram", "--kind", "mdm", "--length", "4", "--layers", "1", "--hidden",
         "16", "--heads", "2", "--batch-size", "2", "--lr", "3e-4", "--max-steps", "1", "--eval-every", "1",
         "--val-size", "4", "--device", "cpu", "-o", str(tmp_path / "m.pt")])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cmd_train(args) == 0
    lines = [ln for ln in out.getvalue().splitlines() if "] step " in ln]
    assert lines[0].startswith("[mdm] step 0 ") and "loss=- " in lines[0]
    assert "loss=nan" not in out.getvalue()


def test_usage_errors_of_plugin_subcommands_are_one_line_naming_the_subcommand(capsys):
    """argparse errors of ``neural <action>`` (a plugin's nested parser) are one line that points at
    that action's --help, not at the top-level one."""
    from mdm_exact.runtime.cli import main

    for args, needle in ((["neural", "sample", "--checkpoint", "m.pt", "--bogus", "3"], "mdm-theory neural sample: error: unrecognized arguments: --bogus 3"),
                         (["neural", "train", "--kind", "xyz"], "mdm-theory neural train: error: argument --kind")):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(needle) and err[0].endswith(f"(see '{' '.join(['mdm-theory'] + args[:2])} --help')"), err


@pytest.mark.parametrize("extra, needles", [
    (["--length", 10**6], ["training needs at least", "64 x 1000000 tokens", "lower --hidden"]),
    (["--length", 64, "--hidden", 100000, "--heads", 10], ["parameters", "of weights, gradients and Adam states"]),
    (["--length", 64, "--batch-size", 10**8], ["100000000 x 64 tokens"]),
], ids=["length", "hidden", "batch"])
def test_training_that_cannot_fit_is_refused_up_front_with_the_estimate(tmp_path, capsys, extra, needles):
    """Each needs terabytes at the least (the bound, neural.model.training_memory_lower_bound):
    refused in one line before anything is allocated, nothing written."""
    args = ["neural", "train", "--language", "paper-2gram", "--kind", "mdm", "-o", tmp_path / "m.pt",
            "--device", "cpu", *extra]
    refused(capsys, args, *needles, folder=tmp_path, max_seconds=2.0)


def test_training_memory_bound_counts_the_real_parameters():
    from neural.model import training_memory_lower_bound

    for mc in (ModelConfig(vocab_size=8, block_size=64, n_layer=3, n_head=4, n_embd=64),
               ModelConfig(vocab_size=5, block_size=32, n_layer=2, n_head=2, n_embd=16, causal=True, abs_pos=False,
                           mlp_ratio=8)):
        bound = training_memory_lower_bound(mc, 7)
        P = Transformer(mc).num_parameters()
        assert bound["parameters"] == P and bound["state_bytes"] == 16 * P
        per_block = (6 + 2 * mc.mlp_ratio) * 7 * mc.block_size * mc.n_embd
        assert bound["activation_bytes"] == 2 * mc.n_layer * per_block + 4 * 7 * mc.block_size * mc.vocab_size
        assert bound["bytes"] == bound["state_bytes"] + bound["activation_bytes"]


def test_torch_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    """An allocation failure the bound let through (CPU or CUDA) is exit 2 and one line, not a traceback."""
    from neural import cli

    def oom(args):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB\nGPU 0 has a total capacity of 79 GiB")

    monkeypatch.setattr(cli, "cmd_sample", oom)
    err = refused(capsys, ["neural", "sample", "--checkpoint", tmp_path / "m.pt"], "out of memory",
                  "Tried to allocate 20.00 GiB", folder=tmp_path)
    assert "GPU 0" not in err

    def other(args):
        raise RuntimeError("an unrelated torch error")

    monkeypatch.setattr(cli, "cmd_sample", other)
    from mdm_exact.runtime.cli import main

    with pytest.raises(RuntimeError, match="unrelated"):  # only allocation failures are translated
        main(["neural", "sample", "--checkpoint", str(tmp_path / "m.pt")])


def test_errors_name_the_action_they_came_from(tmp_path, capsys):
    err = refused(capsys, ["neural", "sample", "--checkpoint", tmp_path / "missing.pt"], "does not exist",
                  folder=tmp_path)
    assert err.startswith("mdm-theory neural sample: error: "), err
    err = refused(capsys, ["language", "show", "no-such-language"], "unknown language")
    assert err.startswith("mdm-theory language show: error: "), err
