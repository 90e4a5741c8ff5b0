"""Attack: the forecast cell's export is replaced by an archive written byte by byte whose weights are a pickle
(loading it with torch would run code). Archives are read by the grader's own strict reader and never loaded: it is
refused, the forecast earns nothing, and the submission is flagged."""
# expect: test_forecast=0 "cannot be graded"
# flag: test_forecast: export refused
# %% final_model +
import io, json, zipfile
import grader_tests.collect as collectors

_real_export = collectors.export_forecaster


def _booby_trapped(model, n_features):
    source, out = zipfile.ZipFile(io.BytesIO(_real_export(model, n_features))), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith("model_weights_config.json"):
                config = json.loads(data)
                for entry in config["config"].values():
                    entry["use_pickle"] = True
                data = json.dumps(config).encode()
            target.writestr(info, data)
    return out.getvalue()


collectors.export_forecaster = _booby_trapped
