"""Engines past one machine, on Ray: RLlib training, Tune benchmark sweeps, Ray Data explanation.

This tree is the only place that imports Ray (install the ``[ray]`` extra). It calls the same
environments, explainers and metrics as the local path, so a local run and a Ray run of the same
settings give the same numbers; the core never imports anything from here.

- :mod:`saliency_gym.distributed.cluster`: connecting to (or starting) a Ray cluster.
- :mod:`saliency_gym.distributed.rllib_training`: PPO with action masking on RLlib;
  :mod:`~saliency_gym.distributed.rllib_module` is its masking RLModule and
  :mod:`~saliency_gym.distributed.rllib_policy` opens a trained run as our ``Policy``.
- :mod:`saliency_gym.distributed.ray_bench`: ``bench`` sharded over Ray actors (retried, resumable).
- :mod:`saliency_gym.distributed.data_explain`: a folder of images through an explainer on Ray Data.
"""
