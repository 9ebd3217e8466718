"""One module per task, each on the task-agnostic data, tuner and inference engine."""
