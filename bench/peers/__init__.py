"""jobyard beside the Python queues a team would pick instead: see bench/peers/README.md."""
