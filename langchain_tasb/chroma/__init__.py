"""The Chroma side: clients, retries, the inner-product collection and its model identity."""
