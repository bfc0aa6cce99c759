"""mdm_exact: exact and Monte Carlo analysis of idealised masked diffusion samplers.

Implements, as reconstructed in ``shared/theory/STATEMENTS.md``, the setting of Feng et al.
(2025), "Theoretical Benefit and Limitation of Diffusion Language Model", arXiv:2502.09622.
Pure NumPy/SciPy/Numba/SymPy: this package never imports torch or matplotlib.

The curated face (every name is loaded on first use, so ``import mdm_exact`` stays cheap)::

    from mdm_exact import load_language, schedule, exact_metrics, run_monte_carlo

    lang = load_language("paper-2gram-t0")
    exact = exact_metrics(lang, 6, schedule("linear", 3))           # SamplerResult, engine "exact"
    mc = run_monte_carlo(lang, 512, schedule("linear", 64), 1000, rng=0)
    print(exact.instance_kl_per_token, mc.instance_kl_per_token, mc["instance_kl_per_token_ci"])

Languages: :class:`Language` (the interface), :class:`NGram`, :class:`HMM`,
:class:`IntervalLanguage` (Example C.7), :func:`interval_hmm` (Note C.8),
:func:`random_ngram` / :func:`random_hmm` (Algorithms 1/2), :func:`load_language`,
:func:`save_language`, :func:`make_preset`, :class:`EntropyRate`. Step rules:
:func:`schedule`, :func:`make_step_rule`, :class:`ScheduleSteps`, :class:`FixedSizes`,
:class:`RandomOrder`, :class:`LeftToRight`, :func:`draw_steps`. Engines:
:func:`exact_output_law`, :func:`exact_metrics`, :func:`run_monte_carlo`,
:func:`sample_idealised`, both returning :class:`SamplerResult`; imperfect models:
:class:`PerturbedModel`. Adaptive policies (confidence, margin, entropy, llada, threshold, eb,
blocks): :class:`Policy`, :func:`make_policy`, :func:`policy_from_options`,
:func:`policy_output_law`, :func:`policy_exact_metrics`, :func:`run_policy_monte_carlo`.
"""

from importlib import import_module as _import_module
from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("mdm-theory")
except _PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

#: public name -> module that defines it (loaded lazily by :func:`__getattr__`)
_FACE = {
    # languages
    "Language": "mdm_exact.languages.base",
    "EntropyRate": "mdm_exact.languages.base",
    "all_sequences": "mdm_exact.languages.base",
    "NGram": "mdm_exact.languages.ngram",
    "HMM": "mdm_exact.languages.hmm",
    "IntervalLanguage": "mdm_exact.languages.examples",
    "interval_hmm": "mdm_exact.languages.examples",
    "random_ngram": "mdm_exact.languages.random",
    "random_hmm": "mdm_exact.languages.random",
    "load_language": "mdm_exact.languages.io",
    "save_language": "mdm_exact.languages.io",
    "make_preset": "mdm_exact.languages.presets",
    # step rules
    "StepRule": "mdm_exact.sampler.schedules",
    "ScheduleSteps": "mdm_exact.sampler.schedules",
    "FixedSizes": "mdm_exact.sampler.schedules",
    "RandomOrder": "mdm_exact.sampler.schedules",
    "LeftToRight": "mdm_exact.sampler.schedules",
    "schedule": "mdm_exact.sampler.schedules",
    "make_step_rule": "mdm_exact.sampler.schedules",
    "draw_steps": "mdm_exact.sampler.schedules",
    # engines and results
    "exact_output_law": "mdm_exact.sampler.exact",
    "exact_metrics": "mdm_exact.sampler.exact",
    "run_monte_carlo": "mdm_exact.sampler.montecarlo",
    "sample_idealised": "mdm_exact.sampler.montecarlo",
    "SamplerResult": "mdm_exact.sampler.results",
    "PerturbedModel": "mdm_exact.sampler.models",
    # adaptive unmasking policies (issue 16): one definition for every engine
    "Policy": "mdm_exact.sampler.policies",
    "make_policy": "mdm_exact.sampler.policies",
    "policy_from_options": "mdm_exact.sampler.policies",
    "policy_output_law": "mdm_exact.sampler.adaptive_exact",
    "policy_exact_metrics": "mdm_exact.sampler.adaptive_exact",
    "run_policy_monte_carlo": "mdm_exact.sampler.adaptive_mc",
}

__all__ = sorted(_FACE) + ["__version__"]


def __getattr__(name):
    module = _FACE.get(name)
    if module is None:
        raise AttributeError(f"module 'mdm_exact' has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_FACE))
