"""Analysis of trained runs (Section V): image use, contribution scores, alignment t-SNE, errors."""
