"""The classroom documents, written from the modules the app shows them from, so the two cannot drift.

    python docs/classroom.py            # write docs/glossary.md (tabs/glossary.py) and the suggested path in
                                        # docs/app.md (tabs/lesson.py, between <!-- lesson --> markers)
    python docs/classroom.py --check    # change nothing; exit 1 naming each document that differs
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python docs/classroom.py` from anywhere
    sys.path.insert(0, str(ROOT))

from tabs import glossary, lesson  # noqa: E402


def written() -> dict[Path, str]:
    """Each document as the modules write it."""
    return {glossary.DOCUMENT: glossary.document(), lesson.DOCUMENT: lesson.placed(lesson.DOCUMENT.read_text())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a document differs")
    args = parser.parse_args(argv)
    stale = [path for path, text in written().items() if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} differs from what the modules write: run python docs/classroom.py",
                  file=sys.stderr)
        return 1 if stale else 0
    for path, text in written().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
