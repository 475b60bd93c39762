"""The built sdist and wheel carry the LICENSE, MIT, ``hanko_tornado.__version__`` and known classifiers.

Run by .ci/package with its tools environment (trove-classifiers installed):
``python .ci/check_dist.py DIST_DIR``. PyPI refuses an upload with a classifier it does not know.
"""

from __future__ import annotations

import ast
import email
import pathlib
import sys
import tarfile
import zipfile

from trove_classifiers import classifiers as known_classifiers


def package_version() -> str:
    tree = ast.parse(pathlib.Path("hanko_tornado/__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise SystemExit("check_dist: hanko_tornado/__init__.py sets no __version__")


def main(dist: pathlib.Path) -> int:
    version = package_version()
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    problems = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = email.message_from_bytes(archive.read(f"hanko_tornado-{version}.dist-info/METADATA"))
    if f"hanko_tornado-{version}.dist-info/licenses/LICENSE" not in names:
        problems.append(f"the wheel has no LICENSE: {names}")
    with tarfile.open(sdist) as archive:
        if f"hanko_tornado-{version}/LICENSE" not in archive.getnames():
            problems.append("the sdist has no LICENSE")
    if metadata["Version"] != version:
        problems.append(f"the wheel is version {metadata['Version']}, hanko_tornado.__version__ is {version}")
    if metadata["License-Expression"] != "MIT":
        problems.append(f"the wheel's License-Expression is {metadata['License-Expression']!r}, not MIT")
    unknown = [c for c in metadata.get_all("Classifier", []) if c not in known_classifiers]
    if unknown:
        problems.append(f"classifiers PyPI does not know: {unknown}")
    if problems:
        print("check_dist: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(f"check_dist: {wheel.name} and {sdist.name} carry the LICENSE, version {version}, known classifiers")
    return 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1])))
