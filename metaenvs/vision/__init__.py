"""Vision task distributions: Omniglot alphabets and episodes, data set as task, image folders."""
