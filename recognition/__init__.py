"""Face enrollment, 1:1 verification and 1:N identification."""
