"""Visual-search probe (seed 004): prompts, answers, attention to the grid, head statistics."""
