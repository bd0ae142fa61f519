"""Triton kernels for the fused families: the same operators as the C++ kernels
(``torch.ops.lstmlab.lstm_forward`` and friends), registered as their CUDA implementation.

One file per cell family (``lstm.py``, ``gru.py``, ``rnn.py``; the clockwork RNN runs on the
Elman operator). Each operator's implementation follows the C++ one step for step and returns
the same tuple, so the operators' autograd and backward operators serve both:

- forward: the input projection of all steps as one matmul (torch), then per step the
  recurrent matmul (torch) and ONE fused Triton pointwise kernel -- the gates, the state update,
  the padding (ended rows keep their state), zoneout -- that reads like the cell's ``step``;
- backward through time: per step one fused pointwise kernel (which also finishes the previous
  step's ``dh``: recurrent dropout, zoneout, ended rows) and the small matmuls;
- the weight gradients after the sweep, as a few large matmuls over all steps.

float32, float64, bfloat16 and float16 tensors: the matmuls run in the tensors' dtype (with
float32 accumulation in cuBLAS), the pointwise kernels in float32 (float64 for float64), and the
gradients carried between steps stay float32. Imported on first use by
:mod:`lstmlab.kernels.backend`; on CPU tensors the kernels need Triton's interpreter
(``TRITON_INTERPRET=1`` set before that first use).
"""
