module fcgibench

go 1.19
