"""Speed and memory of every variant against torch.nn.LSTM (the same as `lstmlab bench`).

python benchmarks/speed.py [--quick] [--cells lstm,peephole,gru] [--threads 2]
"""

from lstmlab.cli.bench import main

if __name__ == "__main__":
    main()
