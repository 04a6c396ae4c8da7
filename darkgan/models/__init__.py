"""darkgan.models"""
