"""Attack: a train_one_epoch without zero_grad that swaps itself for the grader's reference implementation, if the
kernel can import one (the grader's judges, or its former checks module). The kernel holds collectors only."""
# expect: test_train_one_epoch=0 "Did you call optimizer.zero_grad() before loss.backward()?"
# expect: test_forecast=0 "-> 0% of the forecast points"
# flag: suspicious code: touches the grader's code or evidence
# %% training_loop +
def train_one_epoch(model, loader, loss_fn, optimizer):
    """One training pass over loader; returns the mean loss per sample (float)."""
    model.train()
    total = 0.0
    for x, y in loader:
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
    return total / len(loader.dataset)


import importlib

for module, name in (("grader_tests.judges", "reference_train_one_epoch"), ("grader_tests.checks", "_reference_train_one_epoch"),
                     ("grader_tests.verdicts", "reference_train_one_epoch")):
    try:
        train_one_epoch = getattr(importlib.import_module(module), name)
        print("found", module)
    except (ImportError, AttributeError) as err:
        print("not here:", module, type(err).__name__)
