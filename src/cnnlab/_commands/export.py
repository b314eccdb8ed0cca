"""`cnnlab export` and `cnnlab predict`: a run's model out of cnnlab."""

from __future__ import annotations

import json

from cnnlab._commands._common import EXIT_OK, tracking_args


def cmd_export(args) -> int:
    from cnnlab.export import export_model

    done = export_model(
        args.run_id,
        args.format,
        args.out,
        tracking_uri=args.tracking_uri,
        runs_dir=args.runs_dir,
    )
    if args.json:
        print(json.dumps({**vars(done), "path": str(done.path)}))
    else:
        print(
            f"{done.path}: {done.format}, outputs equal PyTorch's on {done.images_checked} "
            f"images (largest probability difference {done.max_difference:.1e})"
        )
    return EXIT_OK


def cmd_predict(args) -> int:
    from cnnlab.export import predict_files

    found = predict_files(
        args.run_id, args.images, tracking_uri=args.tracking_uri, runs_dir=args.runs_dir
    )
    if args.json:
        print(json.dumps([p.to_dict() for p in found]))
        return EXIT_OK
    for p in found:
        print(f"{p.source}: {p.class_name} ({p.probability:.1%})")
    return EXIT_OK


def add_parsers(sub) -> None:
    export = sub.add_parser("export", help="write a run's model as ONNX or a torch.export file")
    export.add_argument("run_id", help="a run id (or runs:/<id>) that logged an MLflow model")
    export.add_argument("--format", required=True, choices=["onnx", "pt2"])
    export.add_argument("--out", required=True, help="the file to write")
    export.add_argument("--runs-dir", default="cnnlab-runs", help="home of the default store")
    export.add_argument("--json", action="store_true", help="print the result as JSON")
    tracking_args(export)
    export.set_defaults(handler=cmd_export)

    predict = sub.add_parser("predict", help="classify PNG/JPEG files or an IDX file")
    predict.add_argument("run_id", help="a run id (or runs:/<id>) that logged an MLflow model")
    predict.add_argument("images", nargs="+", help="PNG or JPEG files, or IDX image files")
    predict.add_argument("--runs-dir", default="cnnlab-runs", help="home of the default store")
    predict.add_argument("--json", action="store_true", help="print every class's probability")
    tracking_args(predict)
    predict.set_defaults(handler=cmd_predict)
