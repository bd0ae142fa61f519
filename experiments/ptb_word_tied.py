"""Penn Treebank, word level, regularised: dropout (Zaremba et al. 2014) and weight tying (Press &
Wolf 2017; Inan et al. 2017), at the size a CPU allows.

Zaremba's "medium" model (2 x 650, dropout 0.5, unrolled 35 steps, 39 epochs; test perplexity
82.7) takes days on two CPU cores. This script keeps its recipe and shrinks it: two LSTM layers
of ``--hidden-size`` units (default 200, the "small" width) with embeddings of the same width
shared with the output layer, dropout ``--dropout`` (default 0.3) on every non-recurrent
connection, unrolled 35 steps, batch 20, every weight U(-0.05, 0.05), forget-gate bias 0, plain
SGD at learning rate 1 on the summed loss for 6 epochs then halved every epoch, 14 epochs,
gradient norm clipped to 5. As in ptb_word.py the summed-loss settings are set as their
equivalents on lstmlab's mean loss: lr 35, clip 5/35.

Test perplexity as the paper computes it: the whole test split as one stream, batch 1, the
state carried throughout, every token after the first scored (82,429 of 82,430).

    python experiments/ptb_word_tied.py               # the full result (14 epochs)
    python experiments/ptb_word_tied.py --minutes 60  # stop after an hour; run again to continue
    python experiments/ptb_word_tied.py --quick       # 3 steps, timed: the projected cost
"""

from __future__ import annotations

import argparse
import math

from common import Budget, arguments, check_claims, language_model, runs_dir, save
from lstmlab.train import TrainConfig

TOKENS, BATCH, BPTT, EPOCHS, FULL_LR_EPOCHS = 929_589, 20, 35, 14, 6
EPOCH = math.ceil((TOKENS // BATCH - 1) / BPTT)  # 1,328 chunks: steps per epoch


def config(runs, hidden: int, dropout: float) -> TrainConfig:
    return TrainConfig(
        task="text",
        text="ptb-word",
        cell="lstm",
        num_layers=2,
        hidden_size=hidden,
        embed_size=hidden,
        tie_weights=True,
        dropout=dropout,
        batch_size=BATCH,
        bptt=BPTT,
        optimizer="sgd",
        lr=float(BPTT),
        clip=5.0 / BPTT,  # = lr 1, clip 5, summed
        lr_decay=0.5,
        decay_every=EPOCH,
        decay_start=FULL_LR_EPOCHS * EPOCH,
        init_scale=0.05,
        forget_bias=0.0,
        steps=EPOCHS * EPOCH,
        eval_every=EPOCH,
        checkpoint_every=500,
        seed=0,
        out=str(runs / f"tied{hidden}-dropout{dropout:g}"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden-size", type=int, default=200, help="units (default 200)")
    parser.add_argument("--dropout", type=float, default=0.3, help="dropout (default 0.3)")
    args = arguments(parser.description, parser)
    budget, runs = Budget(args.minutes), runs_dir("ptb_word_tied", args.quick)
    cfg = config(runs, args.hidden_size, args.dropout)
    result = {
        "paper": {"zaremba_medium_test_perplexity": 82.7, "zaremba_small_test_perplexity": 114.5},
        "hidden_size": args.hidden_size,
        "dropout": args.dropout,
        **language_model(cfg, budget, args.quick, EPOCH, "perplexity"),
    }
    if result["status"]["done"] and not args.quick:
        check_claims(
            result,
            {
                "test perplexity below the unregularised small model's 114.5": result["test"][
                    "perplexity"
                ]
                < 114.5
            },
        )
    save("ptb_word_tied", result, args.quick)


if __name__ == "__main__":
    main()
