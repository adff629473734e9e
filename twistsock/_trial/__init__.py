"""
What C{trial twistsock} finds: see L{twistsock._trial.test_checkout}.
"""
