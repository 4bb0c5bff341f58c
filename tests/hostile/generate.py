"""Hostile import files, generated at test time (megabytes are not committed): each has the shape that made a
parser super-linear or a field unbounded (issue 11)."""

from __future__ import annotations

MB = 1024 * 1024


def bibtex_huge_field(size: int = 2 * MB) -> bytes:
    """One BibTeX entry whose title is ``size`` bytes of LaTeX-looking lines (130 s in bibtexparser at 2 MB)."""
    unit = b"Nudges \\& defaults -- a {re}view of ``choice''\n"
    return b"@article{hostile, year={2020}, title={" + unit * (size // len(unit)) + b"}}\n"


def ris_continuations(size: int = 5 * MB) -> bytes:
    """One RIS record whose abstract runs over ``size`` bytes of short continuation lines (87 s in rispy)."""
    return b"TY  - JOUR\nTI  - Continuations\nAB  - start\n" + b"x\n" * (size // 2) + b"ER  - \n"


def ris_giant_title(size: int = 5 * MB) -> bytes:
    """A RIS record with a ``size``-byte title over wrapped lines (5.2 MB titles went to both models whole)."""
    line = b"very long title words " * 4 + b"\n"
    return b"TY  - JOUR\nTI  - start\n" + line * (size // len(line)) + b"AB  - abstract\nER  - \n"


def ris_one_line(size: int = 50 * MB - 64 * 1024) -> bytes:
    """A 50 MB RIS file (just under MAX_IMPORT_BYTES) that is one line after its first record line."""
    return b"TY  - JOUR\nTI  - " + b"a" * size + b"\nER  - \n"


def bibtex_50mb(size: int = 50 * MB) -> bytes:
    """50 MB of BibTeX entries full of LaTeX markup, just under MAX_IMPORT_BYTES (the decoder's worst case)."""
    entry = (b"@article{k%d, title={Effects of {\\em nudges} on prescribing -- trial %d}, author={M{\\\"u}ller, A. and "
             b"Smith, B.}, year={2020}, abstract={" + b"Background \\& aims: ``defaults'' at 50\\%% uptake. " * 40
             + b"}}\n")
    count = (size - 64 * 1024) // (len(entry % (0, 0)) + 12)  # just under MAX_IMPORT_BYTES
    return b"".join(entry % (i, i) for i in range(count))


def nul_after_sniff() -> bytes:
    """A RIS file with a NUL byte after the first 8 KB (the binary sniffer looks only at the start)."""
    record = b"TY  - JOUR\nTI  - A trial\nER  - \n"
    return record * 400 + b"TY  - JOUR\nTI  - Bad \x00 title\nER  - \n"


def utf16_with_nul() -> bytes:
    """A UTF-16 RIS export (BOM) whose text holds U+0000."""
    return "TY  - JOUR\nTI  - Bad \x00 title\nER  - \n".encode("utf-16")
