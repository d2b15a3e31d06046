"""`ragserve eval answers`: labelled questions down the real chat path, and the answers themselves scored."""
