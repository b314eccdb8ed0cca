"""`cnnlab data`: the built-in datasets, found, downloaded and verified."""

from __future__ import annotations

import json

from cnnlab._commands._common import EXIT_OK, data_dir_arg


def cmd_data(args) -> int:
    from cnnlab.data import REGISTRY, find_data_dir, verify_all

    if args.list:
        rows = [_dataset_row(spec) for spec in REGISTRY.values()]
        if args.json:
            print(json.dumps(rows))
            return EXIT_OK
        for row in rows:
            shape = "x".join(map(str, row["input_shape"]))
            where = row["found_in"] or "not on disk (downloaded on first use)"
            print(f"{row['name']:<14} {shape:<8} {row['classes']:>3} classes  {row['about']}")
            print(f"{'':<14} {where}")
        return EXIT_OK
    download = not args.no_download
    if not args.verify:
        print(find_data_dir(args.data_dir, download=download, dataset=args.dataset))
        return EXIT_OK
    reports = verify_all(args.data_dir, download=download, dataset=args.dataset)
    if args.json:
        print(json.dumps([{**vars(r), "path": str(r.path)} for r in reports]))
        return EXIT_OK
    for r in reports:
        print(f"ok  {r.name:<26} {r.count:>6} items  sha256 {r.sha256}  {r.path}")
    return EXIT_OK


def _dataset_row(spec) -> dict:
    from cnnlab.data import DataError, find_data_dir

    try:  # only files already on disk: listing never downloads
        found = str(find_data_dir(download=False, dataset=spec.name))
    except DataError:
        found = None
    return {
        "name": spec.name,
        "about": spec.about,
        "input_shape": list(spec.input_shape),
        "classes": spec.num_classes,
        "class_names": list(spec.class_names),
        "files": list(spec.file_names),
        "mirror": spec.mirror,
        "found_in": found,
    }


def add_parser(sub) -> None:
    data = sub.add_parser("data", help="list the built-in datasets; locate, download, verify one")
    data.add_argument(
        "dataset", nargs="?", default="fashion-mnist", help="a built-in (default fashion-mnist)"
    )
    data_dir_arg(data)
    data.add_argument("--list", action="store_true", help="the built-in datasets, and where")
    data.add_argument("--verify", action="store_true", help="check every file and print it")
    data.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    data.add_argument("--json", action="store_true", help="with --list or --verify: print JSON")
    data.set_defaults(handler=cmd_data)
