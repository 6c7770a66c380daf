//! The Docker environment's processes, PTYs and files without a helper: sh
//! scripts for files, the pid wrapper and a kill exec for processes.

mod docker_support;
mod support;

docker_support::exec_cases::tests!(false);
