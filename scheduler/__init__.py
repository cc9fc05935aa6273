"""The front door of judgeq: CLI, dataset and trace loading, sampling, budgets."""
