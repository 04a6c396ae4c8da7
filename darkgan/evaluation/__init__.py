"""darkgan.evaluation"""
