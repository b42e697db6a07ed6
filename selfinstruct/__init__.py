"""selfinstruct: grow instruction-tuning data from seed tasks with a teacher LLM."""

__version__ = "0.1.0"
