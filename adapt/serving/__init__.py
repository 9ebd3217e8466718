"""REST serving for saved or exported adapt models: one FastAPI app for every task, with micro-batching."""
