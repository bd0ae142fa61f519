// Python bindings of the fused sequence operations (one family per header).
#include <torch/csrc/utils/pybind.h>  // at::Tensor <-> torch.Tensor; lighter than torch/extension.h

#include "depth_gated.h"
#include "grid.h"
#include "gru.h"
#include "ln_gru.h"
#include "ln_lstm.h"
#include "lstm.h"
#include "rnn.h"
#include "slstm.h"
#include "step.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lstm_forward", &lstmlab::lstm_forward, "LSTM family: forward over a sequence");
  m.def("lstm_backward", &lstmlab::lstm_backward, "LSTM family: backward through time");
  m.def("gru_forward", &lstmlab::gru_forward, "GRU: forward over a sequence");
  m.def("gru_backward", &lstmlab::gru_backward, "GRU: backward through time");
  m.def("rnn_forward", &lstmlab::rnn_forward, "RNN: forward over a sequence");
  m.def("rnn_backward", &lstmlab::rnn_backward, "RNN: backward through time");
  m.def("ln_lstm_forward", &lstmlab::ln_lstm_forward, "LN-LSTM: forward over a sequence");
  m.def("ln_lstm_backward", &lstmlab::ln_lstm_backward, "LN-LSTM: backward through time");
  m.def("ln_rows_forward", &lstmlab::ln_rows_forward, "layer norm over rows, in place");
  m.def("ln_rows_backward", &lstmlab::ln_rows_backward, "layer norm over rows: backward");
  m.def("ln_gru_forward", &lstmlab::ln_gru_forward, "LN-GRU: forward over a sequence");
  m.def("ln_gru_backward", &lstmlab::ln_gru_backward, "LN-GRU: backward through time");
  m.def("depth_gated_forward", &lstmlab::depth_gated_forward,
        "depth-gated LSTM: forward over a sequence");
  m.def("depth_gated_backward", &lstmlab::depth_gated_backward,
        "depth-gated LSTM: backward through time");
  m.def("grid_forward", &lstmlab::grid_forward, "Grid LSTM column: forward over a sequence");
  m.def("grid_backward", &lstmlab::grid_backward, "Grid LSTM column: backward through time");
  m.def("slstm_forward", &lstmlab::slstm_forward, "sLSTM: forward over a sequence");
  m.def("slstm_backward", &lstmlab::slstm_backward, "sLSTM: backward through time");
  m.def("lstm_step", &lstmlab::lstm_step, "LSTM family: one step, no autograd");
  m.def("gru_step", &lstmlab::gru_step, "GRU: one step, no autograd");
}
