"""Statistics: monosemanticity, correlations + FDR, selection tiers, agreement."""
