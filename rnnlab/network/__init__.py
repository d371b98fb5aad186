"""The network and its tasks: initial parameters (J0, B, w), OU tasks and their optimum, per-seed
random streams, and the rate nonlinearities. Torch tensors; no training here."""
