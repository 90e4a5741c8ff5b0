"""Attack: after the hidden checks ran, the final-model cell prints the IPython history (which holds their source)
and the source of the grader's collectors. Feedback must show none of it (and none of it is worth taking)."""
# flag: suspicious code: inspects code, frames or the IPython history
# %% final_model +
import inspect
import sys

print(In)
print(_ih[-4:])
print(inspect.getsource(sys.modules["grader_tests.collect"]))
