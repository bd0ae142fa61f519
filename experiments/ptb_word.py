"""Penn Treebank, word level: Zaremba, Sutskever & Vinyals (2014), the small model.

Two LSTM layers of 200 units, 200-wide embeddings, no dropout, unrolled 20 steps, batch 20,
every weight initialised U(-0.1, 0.1), forget-gate bias 0, plain SGD at learning rate 1 for 4
epochs then halved every epoch, 13 epochs, gradient norm clipped to 5. Paper: validation
perplexity 120.7, test 114.5.

Zaremba's loss is summed over the 20 unrolled steps (and averaged over the batch); lstmlab's
is the mean over all 400 tokens, 1/20 of it. SGD with lr 1 and clipping at 5 on the summed
loss is exactly SGD with lr 20 and clipping at 0.25 on the mean (the update
``lr * g * min(1, c / |g|)`` is the same), which is what this script sets.

The test perplexity is computed as the paper does: the whole test split as one stream, batch
1, the state carried throughout, every token after the first scored (82,429 of 82,430).

    python experiments/ptb_word.py               # the full result (13 epochs)
    python experiments/ptb_word.py --minutes 60  # stop after an hour; run again to continue
    python experiments/ptb_word.py --quick       # 3 steps, timed: the projected cost
"""

from __future__ import annotations

import math

from common import Budget, arguments, check_claims, language_model, runs_dir, save
from lstmlab.train import TrainConfig

TOKENS, BATCH, BPTT, EPOCHS = 929_589, 20, 20, 13
EPOCH = math.ceil((TOKENS // BATCH - 1) / BPTT)  # 2,324 chunks: steps per epoch


def config(runs) -> TrainConfig:
    return TrainConfig(
        task="text",
        text="ptb-word",
        cell="lstm",
        num_layers=2,
        hidden_size=200,
        embed_size=200,
        dropout=0.0,
        batch_size=BATCH,
        bptt=BPTT,
        optimizer="sgd",
        lr=20.0,
        clip=0.25,  # = lr 1, clip 5, summed
        lr_decay=0.5,
        decay_every=EPOCH,
        decay_start=4 * EPOCH,
        init_scale=0.1,
        forget_bias=0.0,
        steps=EPOCHS * EPOCH,
        eval_every=EPOCH,
        checkpoint_every=500,
        seed=0,
        out=str(runs / "small"),
    )


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    budget, runs = Budget(args.minutes), runs_dir("ptb_word", args.quick)
    result = {
        "paper": {"valid_perplexity": 120.7, "test_perplexity": 114.5},
        **language_model(config(runs), budget, args.quick, EPOCH, "perplexity"),
    }
    if result["status"]["done"] and not args.quick:
        check_claims(
            result,
            {
                "test perplexity within 5 % of 114.5": abs(result["test"]["perplexity"] / 114.5 - 1)
                < 0.05
            },
        )
    save("ptb_word", result, args.quick)


if __name__ == "__main__":
    main()
