"""Bad language files are refused (exit 2, one line): nothing is coerced (issue 13)."""

import json
import os

import numpy as np
import pytest

from _bad_input import refused
from mdm_exact._validate import LanguageError
from mdm_exact.languages import load_language

GOOD = {"kind": "ngram", "order": 2, "initial": [0.5, 0.5], "conditional": [[0.5, 0.5], [0.25, 0.75]]}
HMM = {"kind": "hmm", "initial": [1.0, 0.0], "transition": [[0.5, 0.5], [0.5, 0.5]], "emission": [[1.0, 0.0], [0.0, 1.0]]}

JSON_CASES = {
    "bool": (json.dumps(dict(GOOD, initial=[True, False])), "is False (bool)"),
    "bool-among-floats": (json.dumps(dict(GOOD, conditional=[[0.5, 0.5], [True, 0.0]])), "(bool)"),
    "numeric-string": (json.dumps(dict(GOOD, initial=["0.5", 0.5])), "'0.5' (str)"),
    "null": (json.dumps(dict(HMM, emission=[[1.0, None], [0.0, 1.0]])), "None"),
    "nan": (json.dumps(dict(GOOD, initial=[float("nan"), 0.5])), "NaN is not a probability"),
    "infinity": ('{"kind": "ngram", "order": 2, "initial": [Infinity, 0.5], "conditional": [[0.5, 0.5], [0.25, 0.75]]}',
                 "Infinity"),
    "duplicate-key": ('{"kind": "ngram", "order": 2, "initial": [0.5, 0.5], "initial": [0.9, 0.1], '
                      '"conditional": [[0.5, 0.5], [0.25, 0.75]]}', "'initial' appears twice"),
    "duplicate-nested": ('{"kind": "hmm", "initial": [1, 0], "transition": [[0.5, 0.5], [0.5, 0.5]], '
                         '"emission": [[1, 0], [0, 1]], "kind": "hmm"}', "'kind' appears twice"),
    "order-huge": (json.dumps(dict(GOOD, order=10**30)), "contexts"),
    "order-bool": (json.dumps(dict(GOOD, order=True)), "order must be an integer"),
    "order-string": (json.dumps(dict(GOOD, order="2")), "order must be an integer"),
    "kind-list": (json.dumps(dict(GOOD, kind=["ngram"])), "'kind'"),
    "kind-number": (json.dumps(dict(GOOD, kind=3)), "'kind'"),
    "deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "deep-in-object": ('{"kind": "ngram", "order": 2, "initial": ' + "[" * 50 + "0.5" + "]" * 50
                       + ', "conditional": [[0.5, 0.5], [0.25, 0.75]]}', "nested more than 8 levels"),
    "truncated": (json.dumps(GOOD)[:30], "not valid JSON"),
    "not-an-object": ("[1, 2]", "expected a JSON object"),
}


@pytest.mark.parametrize("case", sorted(JSON_CASES))
def test_bad_json_language_files(tmp_path, capsys, case):
    text, needle = JSON_CASES[case]
    path = tmp_path / f"{case}.json"
    path.write_text(text)
    for args in (["language", "show", path], ["exact", "--language", path, "--length", "2", "--steps", "2"],
                 ["sample", "--language", path, "--length", "2", "--steps", "2", "--samples", "2"]):
        err = refused(capsys, args, needle, folder=tmp_path)
        assert str(path) in err


def test_the_good_file_of_these_cases_loads(tmp_path):
    p = tmp_path / "g.json"
    p.write_text(json.dumps(GOOD))
    assert load_language(p).vocab_size == 2
    p.write_text(json.dumps(HMM))
    assert load_language(p).vocab_size == 2


def test_bad_npz_language_files(tmp_path, capsys):
    np.save(tmp_path / "arr.npy", np.zeros(3))
    os.replace(tmp_path / "arr.npy", tmp_path / "arr.npz")
    np.savez(tmp_path / "complex.npz", kind=np.array("ngram"), order=np.array(2),
             initial=np.array([0.5 + 0.0j, 0.5]), conditional=np.array([[0.5, 0.5], [0.25, 0.75]]))
    np.savez(tmp_path / "boolean.npz", kind=np.array("ngram"), order=np.array(2),
             initial=np.array([True, False]), conditional=np.array([[0.5, 0.5], [0.25, 0.75]]))
    np.savez(tmp_path / "strings.npz", kind=np.array("ngram"), order=np.array(2),
             initial=np.array(["0.5", "0.5"]), conditional=np.array([[0.5, 0.5], [0.25, 0.75]]))
    np.savez(tmp_path / "kind-array.npz", kind=np.array(["ngram"]), order=np.array(2),
             initial=np.array([0.5, 0.5]), conditional=np.array([[0.5, 0.5], [0.25, 0.75]]))
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    for name, needle in [("arr.npz", "single .npy array"), ("complex.npz", "dtype complex128"),
                         ("boolean.npz", "dtype bool"), ("strings.npz", "dtype <U3"), ("kind-array.npz", "'kind'"),
                         ("junk.npz", "not a readable .npz")]:
        refused(capsys, ["language", "show", tmp_path / name], needle, folder=tmp_path)


def test_a_directory_named_like_a_language_file(tmp_path, capsys):
    (tmp_path / "x.json").mkdir()
    (tmp_path / "y.npz").mkdir()
    refused(capsys, ["language", "show", tmp_path / "x.json"], "is a directory", folder=tmp_path)
    refused(capsys, ["exact", "--language", tmp_path / "y.npz", "--length", "2", "--steps", "2"], "is a directory",
            folder=tmp_path)


def test_python_api_refuses_the_same_values():
    from mdm_exact.languages import HMM as HMMClass
    from mdm_exact.languages import NGram

    with pytest.raises(LanguageError, match="bool"):
        NGram(2, [True, False], [[0.5, 0.5], [0.25, 0.75]])
    with pytest.raises(LanguageError, match="str"):
        HMMClass(["1", 0], [[0.5, 0.5], [0.5, 0.5]], [[1, 0], [0, 1]])
    with pytest.raises(LanguageError, match="complex"):
        NGram(2, np.array([0.5 + 1j, 0.5]), [[0.5, 0.5], [0.25, 0.75]])
    lang = NGram(2, np.array([0.5, 0.5], dtype=np.float32), np.array([[1, 0], [0, 1]]))  # real dtypes still fine
    assert lang.vocab_size == 2


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3", float("nan")])
def test_preset_seeds_must_be_non_negative_integers(seed):
    """A float seed was truncated and a negative one met NumPy's anonymous "expected non-negative integer"."""
    with pytest.raises(ValueError, match="seed: expected a seed, an integer >= 0, got"):
        load_language("paper-3gram", seed=seed)


def test_preset_seed_types_that_are_integers():
    a, b = load_language("paper-3gram", seed=np.int64(7)), load_language("paper-3gram", seed=7)
    assert np.array_equal(a.conditional, b.conditional)
    assert not np.array_equal(a.conditional, load_language("paper-3gram", seed=8).conditional)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_language_make_into_a_missing_folder_names_the_folder(tmp_path, capsys, suffix):
    target = tmp_path / "no" / "such" / f"x{suffix}"
    refused(capsys, ["language", "make", "paper-2gram", "--out", target], "the folder", str(target.parent),
            folder=tmp_path)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_save_language_replaces_a_file_whole_and_leaves_no_temporary(tmp_path, suffix, monkeypatch):
    """A write that fails half-way keeps the old file as it was and leaves nothing beside it."""
    from mdm_exact.languages import io as lio

    path = tmp_path / f"lang{suffix}"
    lio.save_language(load_language("paper-2gram"), path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(lio.json, "dumps", broken)
    monkeypatch.setattr(lio.np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        lio.save_language(load_language("paper-hmm"), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    monkeypatch.undo()
    np.testing.assert_array_equal(load_language(path).conditional, load_language("paper-2gram").conditional)


def _entry_points():
    import mdm_exact as M

    rule = M.schedule("linear", 2)
    policy = M.make_policy("confidence", L=3, num_steps=2)
    return {
        "exact_output_law": lambda lang: M.exact_output_law(lang, 3, rule),
        "exact_metrics": lambda lang: M.exact_metrics(lang, 3, rule).to_dict(),
        "sample_idealised": lambda lang: M.sample_idealised(lang, 3, rule, 5, rng=1),
        "run_monte_carlo": lambda lang: M.run_monte_carlo(lang, 3, rule, 5, rng=1).to_dict(),
        "policy_output_law": lambda lang: M.policy_output_law(lang, 3, policy).log_p,
        "policy_exact_metrics": lambda lang: M.policy_exact_metrics(lang, 3, policy).to_dict(),
        "run_policy_monte_carlo": lambda lang: M.run_policy_monte_carlo(lang, 3, policy, 5, rng=1).to_dict(),
    }


@pytest.mark.parametrize("entry", sorted(_entry_points()))
def test_entry_points_take_a_preset_name_or_file_like_the_cli(tmp_path, entry):
    """``run_monte_carlo("paper-2gram", ...)`` is ``run_monte_carlo(make_preset("paper-2gram"), ...)``,
    and a language file path is the language it holds; anything else is a TypeError naming what is
    accepted, not an AttributeError from deep inside."""
    from mdm_exact.languages import make_preset, save_language

    f = _entry_points()[entry]
    want = f(make_preset("paper-2gram"))
    path = save_language(make_preset("paper-2gram"), tmp_path / "l.npz")

    def same(a, b):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for k in a:
                if k not in ("seconds", "samples_per_second"):  # wall clock, not the result
                    same(a[k], b[k])
        elif isinstance(a, (tuple, list)) and not isinstance(a, str):
            for u, v in zip(a, b, strict=True):
                same(u, v)
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    same(f("paper-2gram"), want)
    same(f(path), want)
    same(f(str(path)), want)
    for bad in (None, {"kind": "ngram"}, np.zeros((2, 2))):
        with pytest.raises(TypeError, match="expected a Language .* or a preset name"):
            f(bad)
    with pytest.raises(ValueError, match="unknown language 'paper-2grm'"):
        f("paper-2grm")
