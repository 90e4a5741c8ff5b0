"""The untouched student release: zero automatic score."""
# base: blank
# expect: test_mode=0 "NameError: name 'MODE' is not defined"
# expect: test_model_shapes=0 "is not implemented yet: Replace this line with your code"
# expect: test_loss=0 "is not implemented yet: Replace this line with your code"
# expect: test_train_one_epoch=0 "is not implemented yet: Replace this line with your code"
# expect: test_evaluate=0 "is not implemented yet: Replace this line with your code"
# expect: test_fit=0 "is not implemented yet: Replace this line with your code"
# expect: test_forecast=0 "NameError: name 'final_model' is not defined"
