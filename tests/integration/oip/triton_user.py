"""A Triton user's script: tritonclient[grpc] from PyPI, nothing of ceal. Run with the tritonclient venv.

    python triton_user.py URL IMAGE.npy OUT.npz [--samples 8] [--seed 3] [--threshold 0.5]

Checks liveness/readiness and the model's metadata the way a Triton user would, then calls
`InferenceServerClient.infer` and saves every output (`as_numpy`) plus the metadata to OUT.npz.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import tritonclient.grpc as grpcclient

OUTPUTS = ("probability", "label_map", "entropy", "mutual_information", "variance", "score")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("image")
    parser.add_argument("out")
    parser.add_argument("--model", default="lesion")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()

    client = grpcclient.InferenceServerClient(url=args.url)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(args.model)
    meta = client.get_model_metadata(args.model, as_json=True)
    server = client.get_server_metadata(as_json=True)

    image = np.load(args.image)
    datatype = {np.dtype("uint8"): "UINT8", np.dtype("uint16"): "UINT16", np.dtype("float32"): "FP32"}[image.dtype]
    infer_input = grpcclient.InferInput("image", list(image.shape), datatype)
    infer_input.set_data_from_numpy(image)
    outputs = [grpcclient.InferRequestedOutput(name) for name in OUTPUTS]
    result = client.infer(
        args.model,
        [infer_input],
        outputs=outputs,
        request_id="triton-user-1",
        parameters={"samples": args.samples, "seed": args.seed, "threshold": args.threshold},
    )
    response = result.get_response(as_json=True)
    arrays = {name: result.as_numpy(name) for name in OUTPUTS}
    np.savez(
        args.out,
        **arrays,
        model_metadata=json.dumps(meta),
        server_metadata=json.dumps(server),
        response=json.dumps({k: v for k, v in response.items() if k != "raw_output_contents"}),
    )
    client.close()


if __name__ == "__main__":
    main()
