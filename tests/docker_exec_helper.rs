//! The Docker environment's processes, PTYs and files with the helper session
//! in the container (`burrow-helper serve`).

mod docker_support;
mod support;

docker_support::exec_cases::tests!(true);
