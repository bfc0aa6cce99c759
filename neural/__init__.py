"""Learned masked diffusion models (MDLM style) and autoregressive baselines, trained on the
formal languages of :mod:`mdm_exact` and scored against their exact laws.

Everything here needs PyTorch; :mod:`mdm_exact` never imports this package. Submodules:

* :mod:`neural.model` - one transformer (``ModelConfig.causal`` switches MDM / AR), rotary positions;
* :mod:`neural.diffusion` - masking schedules, SUBS parameterisation, the continuous-time ELBO;
* :mod:`neural.ar` - AR loss, exact log-likelihood, sampling with and without a KV cache;
* :mod:`neural.sample` - schedule-driven MDM sampler with a per-sequence cache;
* :mod:`neural.categorical` - float64 inverse-CDF draws (float32 Gumbel-max as an option);
* :mod:`neural.data` - streamed exact samples, validation sets, entropy rates;
* :mod:`neural.oracle` - :class:`~neural.oracle.ExactOracle`, the exact conditionals as a masked-LM module;
* :mod:`neural.conformance` - ``check_sampler``: a user's sampler against the exact law of its policy;
* :mod:`neural.leakage` - mass on impossible tokens and per-token KL, exact per context;
* :mod:`neural.campaign`, :mod:`neural.cpu_runs` - the issue-14 evaluation and the CPU campaign;
* :mod:`neural.train`, :mod:`neural.checkpoint`, :mod:`neural.evaluate`, :mod:`neural.gpu_run`,
  :mod:`neural.cli` (handlers of ``mdm-theory neural``).
"""

#: The paper's numbers of sampling steps N (Figure 6; ``neural evaluate`` and ``neural.gpu_run``).
PAPER_STEPS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)
