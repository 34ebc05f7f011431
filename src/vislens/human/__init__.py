"""Human studies: annotation tasks and their import/export formats."""
