"""The LLM layer: OpenAI-compatible providers, screening prompts, pricing, decision rule and the simulator."""
