"""Seed 003's viewer defaults (its command-line flags), kept apart so the CLI loads fast."""

DEFAULT_MIS_CSV = "mis_Qwen_Qwen3-VL-4B-Instruct.csv"
DEFAULT_CORRECT_CSV = "correct_Qwen_Qwen3-VL-4B-Instruct.csv"
DEFAULT_COLOR_BY = "ground_truth_word_label"
DEFAULT_HOVER = "file_name,ground_truth_word_label,ground_truth_num_label"
METADATA_FILE = "metadata.csv"
