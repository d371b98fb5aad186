"""The BPTT engine: Euler-discretised rate dynamics with a fused adjoint backward, its time loops
(torch ops, or compiled with numba around MKL's GEMM on the CPU), reusable workspaces, and the
CUDA-graphed training step."""
